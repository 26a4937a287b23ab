"""The command-line side of the step registry: `ensemble fuse`/`tune` options generated from :data:`STEPS`.

For each registered step (in :func:`canonical_order`):

- one flag named after the step: ``--rerank/--no-rerank`` for a step without ``flag_params``, else
  a value for those keys (``--dba K``, ``--camera-penalty PENALTY``, ``--subtract MODEL[:WEIGHT]``,
  repeatable for a ``repeatable`` step);
- ``--<step>-<key>`` for every other parameter (plus the :class:`Param`'s ``aliases``, e.g. ``--k1``),
  typed, checked and documented by its :class:`Param`; not given means the ``Param`` default;
- for ``tune``, ``--<step>-<key>-grid`` (and ``--<alias>-grid``) for every parameter with a ``grid``.

:class:`StepCommand` generates these options when the command runs, so a step registered after
import (a plugin, a test) has its options too. Step options given on the command line become the
pipeline's steps in canonical order (:func:`pipeline_from_options`).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import click

from post_processing.registry import RegistryError

from .fusion import FusionError, parse_weights
from .pipeline import STEPS, Param, Pipeline, Step, StepSpec, canonical_order


def _option_name(*parts: str) -> str:
    return "--" + "-".join(parts).replace("_", "-")


class ParamValue(click.ParamType):
    """One value of a step parameter, converted and checked by its :class:`Param`."""

    def __init__(self, param: Param):
        self.param = param
        self.name = param.kind.__name__

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> Optional[str]:
        if self.param.choices:
            return "[" + "|".join(self.param.choices) + "]"
        return {int: "INTEGER", float: "FLOAT", str: "TEXT", bool: "BOOLEAN", dict: "YAML"}[self.param.kind]

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.param.parse(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


class FlagValue(click.ParamType):
    """The value of a step's own flag: its ``flag_params`` separated by ``:``, trailing ones optional."""

    def __init__(self, spec: StepSpec):
        self.spec = spec
        self.name = spec.name
        keys = [k.upper() for k in spec.flag_params]
        self.metavar = keys[0] + "".join(f"[:{k}]" for k in keys[1:])

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> Optional[str]:
        return self.metavar

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Any:
        if isinstance(value, dict):
            return value
        parts = value.split(":", len(self.spec.flag_params) - 1)
        out = {}
        for key, text in zip(self.spec.flag_params, parts):
            try:
                out[key] = self.spec.params[key].parse(text)
            except ValueError as e:
                self.fail(f"{value!r} ({self.metavar}): {key.upper()}: {e}", param, ctx)
        return out


class GridValue(click.ParamType):
    """Comma-separated values of one step parameter (a ``tune`` grid), each checked by its :class:`Param`."""

    def __init__(self, param: Param):
        self.param = param
        self.name = "grid"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> Optional[str]:
        return "V1,V2,..."

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return tuple(self.param.parse(v.strip()) for v in value.split(",") if v.strip())
        except ValueError as e:
            self.fail(f"{value!r}: {e}", param, ctx)


class StepOption(click.Option):
    """A generated option: the flag of step ``step`` (``key`` None), a parameter, or a parameter's grid."""

    def __init__(self, decls: Sequence[str], step: str, key: Optional[str] = None, grid: bool = False, **kwargs):
        super().__init__(list(decls), **kwargs)
        self.step, self.key, self.grid = step, key, grid


def _step_options(spec: StepSpec) -> List[StepOption]:
    """The flag of ``spec`` and one option per parameter it does not take as the flag's value."""
    flag = _option_name(spec.name)
    ident = f"step_{spec.name}"
    if spec.flag_params:
        described = "; ".join(f"{k.upper()}: {spec.params[k].help}, {spec.params[k].describe()}"
                              for k in spec.flag_params)
        options = [StepOption([flag, ident], spec.name, type=FlagValue(spec), multiple=spec.repeatable,
                              help=f"step: {spec.help} ({described})"
                                   + ("; repeat for several" if spec.repeatable else ""))]
    else:
        options = [StepOption([f"{flag}/--no-{flag[2:]}", ident], spec.name, default=False,
                              help=f"step: {spec.help} (default off)")]
    for key, param in spec.params.items():
        if key in spec.flag_params:
            continue
        names = [_option_name(spec.name, key), *param.aliases]
        text = f"{spec.name}: {param.help}" + ("" if param.default in (None, {}) else f"  [default: {param.default}]")
        if param.kind is bool:
            decls = [f"{names[0]}/--no-{names[0][2:]}", *names[1:], f"{ident}__{key}"]
            options.append(StepOption(decls, spec.name, key, default=None, help=text))
        else:
            options.append(StepOption([*names, f"{ident}__{key}"], spec.name, key, type=ParamValue(param),
                                      help=text))
    return options


def _grid_options(spec: StepSpec) -> List[StepOption]:
    """``--<step>-<key>-grid`` (and ``--<alias>-grid``) for every parameter of ``spec`` with a grid."""
    options = []
    for key, param in spec.params.items():
        if param.grid is None:
            continue
        names = [_option_name(spec.name, key) + "-grid", *(a + "-grid" for a in param.aliases)]
        shown = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in param.grid)
        options.append(StepOption([*names, f"grid_{spec.name}__{key}"], spec.name, key, grid=True,
                                  type=GridValue(param), help=f"{spec.name} {key} values tried  [default: {shown}]"))
    return options


class StepCommand(click.Command):
    """A command whose step options (``grids=True``: and tune grids) are generated from :data:`STEPS`.

    They are regenerated whenever the registry changed since the last call and placed right after
    ``--pipeline``, which they are the alternative to.
    """

    def __init__(self, *args, grids: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.grids = grids
        self._specs: List[StepSpec] = []  # the registry the options below were generated from
        self._options: List[StepOption] = []

    def generated(self) -> List[StepOption]:
        """The generated options, in canonical step order (regenerated when :data:`STEPS` changed)."""
        specs = [STEPS.get(n) for n in canonical_order()]
        if len(specs) != len(self._specs) or any(a is not b for a, b in zip(specs, self._specs)):
            options = [o for spec in specs for o in _step_options(spec)]
            if self.grids:
                options += [o for spec in specs for o in _grid_options(spec)]
            self._check_names(options)
            self._specs, self._options = specs, options
        return self._options

    def _check_names(self, options: List[StepOption]) -> None:
        """A step whose generated option name is taken (by the command or another step) is refused."""
        owner = {o: f"{self.name}'s own option" for p in self.params for o in (*p.opts, *p.secondary_opts)}
        for option in options:
            for name in (*option.opts, *option.secondary_opts):
                if name in owner:
                    raise RegistryError(f"step {option.step!r}: option {name} is already {owner[name]}")
                owner[name] = f"an option of step {option.step!r}"

    def get_params(self, ctx: click.Context) -> List[click.Parameter]:
        params = super().get_params(ctx)
        at = next(i for i, p in enumerate(params) if p.name == "pipeline_file") + 1
        return params[:at] + self.generated() + params[at:]


def option_given(ctx: click.Context, name: str) -> bool:
    """Whether parameter ``name`` was given (command line or environment), not left at its default."""
    return ctx.get_parameter_source(name) not in (click.core.ParameterSource.DEFAULT, None)


def _given(ctx: click.Context, option: click.Option) -> bool:
    return option_given(ctx, option.name)


def steps_from_options(ctx: click.Context) -> List[Step]:
    """The steps whose flags were given, in canonical order, with the parameter options given."""
    options = [o for o in ctx.command.generated() if not o.grid]
    flags = {o.step: o for o in options if o.key is None}
    values: Dict[str, Dict[str, Any]] = {}
    for o in options:
        if o.key is not None and _given(ctx, o):
            if not ctx.params[flags[o.step].name]:
                raise click.UsageError(f"{o.opts[0]} sets a parameter of step {o.step!r}; add {flags[o.step].opts[0]}")
            values.setdefault(o.step, {})[o.key] = ctx.params[o.name]
    steps = []
    for name, flag in flags.items():  # canonical order
        value = ctx.params[flag.name]
        given = value if flag.multiple else [value] if value else []
        for flag_values in given:
            params = {**values.get(name, {}), **(flag_values if isinstance(flag_values, dict) else {})}
            steps.append(Step.make(name, flag.opts[0], **params))
    return steps


def grids_from_options(ctx: click.Context, pipe: Pipeline) -> Dict[Tuple[str, str], Tuple[Any, ...]]:
    """``{(step, key): values}`` of the grid options given (``tune``); a grid of a step that is not in
    ``pipe`` would be ignored, so it is a usage error naming the option."""
    grids = {}
    steps = {s.name for s in pipe.steps}
    for o in ctx.command.generated():
        if o.grid and _given(ctx, o):
            if o.step not in steps:
                raise click.UsageError(f"{o.opts[0]} tunes step {o.step!r}, which is not in the pipeline; add "
                                       f"{_option_name(o.step)} (or list the step in --pipeline)")
            grids[(o.step, o.key)] = ctx.params[o.name]
    return grids


def pipeline_from_options(ctx: click.Context, o: Mapping[str, Any]) -> Pipeline:
    """The pipeline from ``--pipeline`` (or the step options) with --models/--weights/--fusion/--distance on top."""
    given = [opt.opts[0] for opt in ctx.command.generated() if not opt.grid and _given(ctx, opt)]
    if o["pipeline_file"]:
        if given:
            raise click.UsageError(f"--pipeline {o['pipeline_file']} lists the steps; do not combine it with "
                                   f"step options ({', '.join(given)})")
        pipe = Pipeline.load(o["pipeline_file"])
    else:
        pipe = Pipeline(steps=steps_from_options(ctx))
    if o["models"]:
        pipe.models = [m.strip() for m in o["models"].split(",") if m.strip()]
        pipe.weights = {m: w for m, w in pipe.weights.items() if m in pipe.models}
    if not pipe.models:
        raise click.UsageError("no models: give --models a,b,c or list them under 'models:' in the pipeline YAML")
    if o["weights"]:
        try:
            pipe.weights = parse_weights(o["weights"], pipe.models)
        except FusionError as e:
            raise click.BadParameter(str(e), param_hint="--weights") from None
    if o["fusion"]:
        pipe.fusion = o["fusion"]
    if o["distance"]:
        pipe.distance = o["distance"]
    if option_given(ctx, "dense_rerank_max") and not any(s.name == "rerank" for s in pipe.steps):
        raise click.UsageError("--dense-rerank-max applies to re-ranking, which is not in the pipeline; add --rerank "
                               "(or a rerank step in --pipeline)")
    return pipe.validate(o["pipeline_file"] or "command line")

