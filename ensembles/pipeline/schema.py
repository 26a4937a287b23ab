"""The step registry: every post-processing step declares itself here, once.

``@register_step(name, stage, order, help, **params)`` adds ``func(state, params)`` to :data:`STEPS`
with a typed :class:`Param` per key. Everything else is generated from that declaration: pipeline
YAML validation, ``ensemble steps``, the ``ensemble fuse``/``tune`` options (``--<step>`` and
``--<step>-<key>``, :mod:`ensembles.cli_steps`), ``tune``'s search axes (``Param.grid``) and the
order step options run in (:func:`canonical_order`: by stage, then ``order``).

The built-in steps live in :mod:`ensembles.steps` (one module per topic, imported on first use);
a plugin registers its own through the ``reid_ensemble.plugins`` entry-point group.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import yaml

from post_processing.errors import ReidError
from post_processing.registry import Registry, import_submodules

FEATURES, DISTANCES, RANKING = 0, 1, 2
STAGE_NAMES = {FEATURES: "features", DISTANCES: "distances", RANKING: "ranking"}

_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string", dict: "a mapping"}
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


class PipelineError(ReidError, ValueError):
    """Invalid pipeline (names the file, step and key) or a step that cannot run on this data."""


@dataclass(frozen=True)
class Param:
    """One step parameter: its type (int, float, bool, str or dict), default and constraints.

    ``grid`` lists the values ``ensemble tune`` tries by default (None: not tuned); ``aliases`` are
    extra command-line names besides the generated ``--<step>-<key>`` (e.g. ``--k1``).
    """

    kind: type
    default: Any = None
    help: str = ""
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Tuple[str, ...] = ()
    optional: bool = False  # None is a valid value
    required: bool = False
    grid: Optional[Tuple[Any, ...]] = None
    aliases: Tuple[str, ...] = ()

    def describe(self) -> str:
        kind = _KINDS[self.kind]
        if self.choices:
            kind = "one of " + ", ".join(self.choices)
        if self.minimum is not None and self.maximum is not None:
            kind += f" in [{self.minimum:g}, {self.maximum:g}]"
        elif self.minimum is not None:
            kind += f" >= {self.minimum:g}"
        elif self.maximum is not None:
            kind += f" <= {self.maximum:g}"
        return kind + (" or null" if self.optional else "")

    def check(self, value: Any) -> Any:
        """``value`` converted to this parameter's type; raises ``ValueError`` with what was expected."""
        if value is None:
            if self.optional:
                return None
            raise ValueError(f"expected {self.describe()}, got null")
        if self.kind is bool:
            ok = isinstance(value, bool)
        elif self.kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            value = float(value) if ok else value
        else:
            ok = isinstance(value, self.kind)
        if ok and self.choices and value not in self.choices:
            ok = False
        if ok and self.minimum is not None and value < self.minimum:
            ok = False
        if ok and self.maximum is not None and value > self.maximum:
            ok = False
        if not ok:
            raise ValueError(f"expected {self.describe()}, got {value!r}")
        return dict(value) if self.kind is dict else value

    def parse(self, text: str) -> Any:
        """Command-line ``text`` converted to this parameter's type and checked (``ValueError`` if not)."""
        try:
            if self.kind is bool:
                if text.lower() not in _TRUE + _FALSE:
                    raise ValueError(text)
                value: Any = text.lower() in _TRUE
            elif self.kind is dict:
                value = yaml.safe_load(text)
            else:
                value = self.kind(text)
        except (ValueError, yaml.YAMLError):
            raise ValueError(f"expected {self.describe()}, got {text!r}") from None
        return self.check(value)


@dataclass(frozen=True)
class StepSpec:
    """A registered step: what :func:`register_step` was given.

    ``flag_params``: the keys the step's own command-line flag takes as its value (``--dba K``,
    ``--subtract MODEL[:WEIGHT]``); none makes it an on/off flag (``--rerank``). ``repeatable``: the
    flag may be given several times (one step each). ``needs_train``: the step reads the training
    features. ``aux_features``: the key naming an auxiliary feature set the step reads. ``check``:
    ``check(params)`` raises ``ValueError`` for a combination of values the types cannot express
    (e.g. learner arguments), so that a pipeline is refused before anything is loaded.
    """

    name: str
    stage: int
    order: int
    func: Callable[..., None]
    params: Dict[str, Param]
    help: str
    flag_params: Tuple[str, ...] = ()
    repeatable: bool = False
    needs_train: bool = False
    aux_features: Optional[str] = None
    check: Optional[Callable[[Dict[str, Any]], None]] = None

    def __repr__(self) -> str:
        return f"<step {self.name!r}: {self.func.__module__}.{self.func.__qualname__}>"


def _discover_builtin_steps(name: Optional[str]) -> None:
    import_submodules("ensembles.steps")


STEPS: Registry[StepSpec] = Registry("step", discover=_discover_builtin_steps)


def register_step(name: str, stage: int, order: int, help: str, flag_params: Tuple[str, ...] = (),
                  repeatable: bool = False, needs_train: bool = False, aux_features: Optional[str] = None,
                  check: Optional[Callable[[Dict[str, Any]], None]] = None, **params: Param):
    """Decorator adding ``func(state, params)`` to :data:`STEPS` under ``name``.

    ``stage`` is FEATURES, DISTANCES or RANKING; ``order`` places the step among its stage's steps
    when they come from command-line options (built-ins use multiples of 10, so a new step fits in
    between). ``check`` validates the parameters together (see :class:`StepSpec`). A name registered
    twice raises :class:`post_processing.registry.RegistryError`.
    """
    if stage not in STAGE_NAMES:
        raise ValueError(f"step {name!r}: stage must be FEATURES, DISTANCES or RANKING, got {stage!r}")
    for key in (*flag_params, *([aux_features] if aux_features else [])):
        if key not in params:
            raise ValueError(f"step {name!r}: {key!r} is not one of its parameters ({', '.join(params)})")

    def deco(func):
        STEPS.register(name, StepSpec(name, stage, order, func, dict(params), help, tuple(flag_params),
                                      repeatable, needs_train, aux_features, check))
        return func

    return deco


def canonical_order() -> List[str]:
    """Every registered step name in data-flow order: by stage, then declared ``order``, then name."""
    return sorted(STEPS.names(), key=lambda n: (STEPS.get(n).stage, STEPS.get(n).order, n))
