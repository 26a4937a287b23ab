"""The pipeline YAML model: a configured :class:`Step` and the :class:`Pipeline` of one run.

A pipeline is ``{models: [...], weights: {model: w}, fusion: concat|distance, distance: euclidean,
steps: [{name: rerank, k1: 20, ...}, ...]}``; steps run in the order listed and must be in stage
order (feature steps, then distance steps, then ranking steps). ``validation`` (written by
``ensemble tune``) is the table the pipeline was chosen by; it is carried into fuse's metrics JSON. Every problem raises
:class:`PipelineError` naming the file, step and key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

import yaml

from post_processing.distance import METRICS
from post_processing.fileio import atomic_write
from post_processing.registry import UnknownNameError

from ..fusion import FUSIONS, FusionError, check_weights
from .schema import STAGE_NAMES, STEPS, PipelineError

TOP_LEVEL_KEYS = ("models", "weights", "fusion", "distance", "steps", "validation")


@dataclass
class Step:
    """One configured step: its name and every parameter (defaults filled in)."""

    name: str
    params: Dict[str, Any]

    @classmethod
    def make(cls, name: str, where: str = "step", **params) -> "Step":
        """Validated step: unknown names/keys and bad values raise :class:`PipelineError` naming ``where``."""
        if not isinstance(name, str):
            raise PipelineError(f"{where}: key 'name': expected a step name (one of {', '.join(STEPS.names())}), "
                                f"got {name!r}")
        try:
            spec = STEPS.get(name)
        except UnknownNameError as e:
            raise PipelineError(f"{where}: {e}") from None
        where = f"{where} {name!r}"
        unknown = [k for k in params if k not in spec.params]
        if unknown:
            raise PipelineError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(spec.params) or '(none)'}")
        values = {}
        for key, param in spec.params.items():
            if key not in params:
                if param.required:
                    raise PipelineError(f"{where}: missing key {key!r} ({param.describe()}: {param.help})")
                values[key] = param.default
                continue
            try:
                values[key] = param.check(params[key])
            except ValueError as e:
                raise PipelineError(f"{where}: key {key!r}: {e}") from None
        if spec.check is not None:
            try:
                spec.check(values)
            except ValueError as e:
                raise PipelineError(f"{where}: {e}") from None
        return cls(name, values)

    @property
    def stage(self) -> int:
        return STEPS.get(self.name).stage

    def label(self) -> str:
        """``name(k=v, ...)`` for the table; switches left at their default are not shown."""
        spec = STEPS.get(self.name).params
        shown = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in self.params.items() if v is not None and v != {}
                          and not (isinstance(v, bool) and v == spec[k].default))
        return f"{self.name}({shown})" if shown else self.name


@dataclass
class Pipeline:
    """Models, fusion and the ordered steps of one ``ensemble fuse`` run."""

    models: List[str] = field(default_factory=list)
    weights: Dict[str, float] = field(default_factory=dict)
    fusion: str = "concat"
    distance: str = "euclidean"
    steps: List[Step] = field(default_factory=list)
    validation: Optional[Dict[str, Any]] = None  # what `ensemble tune` chose it by (never read by a step)

    def validate(self, source: str = "pipeline") -> "Pipeline":
        """Checks fusion, distance, weights and stage order; returns ``self``."""
        if self.fusion not in FUSIONS:
            raise PipelineError(f"{source}: key 'fusion': expected one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        if self.distance not in METRICS:
            raise PipelineError(f"{source}: key 'distance': expected one of {', '.join(METRICS)}, got {self.distance!r}")
        if len(set(self.models)) != len(self.models):
            raise PipelineError(f"{source}: key 'models': a model is listed twice: {', '.join(self.models)}")
        try:
            check_weights(self.models or None, self.weights)
        except FusionError as e:
            raise PipelineError(f"{source}: key 'weights': {e}") from None
        latest = None
        for i, step in enumerate(self.steps, 1):
            if latest is not None and step.stage < latest[1].stage:
                raise PipelineError(
                    f"{source}: step {i} {step.name!r} works on {STAGE_NAMES[step.stage]} but comes after step "
                    f"{latest[0]} {latest[1].name!r} which works on {STAGE_NAMES[latest[1].stage]}; list feature "
                    f"steps first, then distance steps, then ranking steps")
            if latest is None or step.stage >= latest[1].stage:
                latest = (i, step)
        return self

    @classmethod
    def from_dict(cls, data: Any, source: str = "pipeline") -> "Pipeline":
        """Pipeline from parsed YAML; every problem raises :class:`PipelineError` naming ``source``."""
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise PipelineError(f"{source}: expected a mapping with keys {', '.join(TOP_LEVEL_KEYS)}, "
                                f"got {type(data).__name__}")
        unknown = [k for k in data if k not in TOP_LEVEL_KEYS]
        if unknown:
            raise PipelineError(f"{source}: unknown key {unknown[0]!r}; valid keys: {', '.join(TOP_LEVEL_KEYS)}")
        models = data.get("models") or []
        if isinstance(models, str):
            models = [m.strip() for m in models.split(",") if m.strip()]
        if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
            raise PipelineError(f"{source}: key 'models': expected a list of model names, got {models!r}")
        weights = data.get("weights") or {}
        if not isinstance(weights, Mapping):
            raise PipelineError(f"{source}: key 'weights': expected a mapping model: weight, got {weights!r}")
        raw_steps = data.get("steps") or []
        if not isinstance(raw_steps, list):
            raise PipelineError(f"{source}: key 'steps': expected a list of steps, got {type(raw_steps).__name__}")
        steps = []
        for i, item in enumerate(raw_steps, 1):
            where = f"{source}: step {i}"
            if isinstance(item, str):
                item = {"name": item}
            if not isinstance(item, Mapping):
                raise PipelineError(f"{where}: expected a mapping with 'name' and parameters, got {item!r}")
            if "name" not in item:
                raise PipelineError(f"{where}: missing key 'name' (one of {', '.join(STEPS.names())})")
            bad = [k for k in item if not isinstance(k, str)]
            if bad:
                raise PipelineError(f"{where}: key {bad[0]!r} is a {type(bad[0]).__name__}, expected a parameter name")
            params = {k: v for k, v in item.items() if k != "name"}
            steps.append(Step.make(item["name"], where, **params))
        for key in ("fusion", "distance"):
            if key in data and not isinstance(data[key], str):
                raise PipelineError(f"{source}: key {key!r}: expected a name, got {data[key]!r}")
        validation = data.get("validation")
        if validation is not None and not isinstance(validation, Mapping):
            raise PipelineError(f"{source}: key 'validation': expected the mapping `ensemble tune` writes, "
                                f"got {type(validation).__name__}")
        pipe = cls(list(models), {str(k): v for k, v in weights.items()}, data.get("fusion", "concat"),
                   data.get("distance", "euclidean"), steps, dict(validation) if validation else None)
        return pipe.validate(source)

    @classmethod
    def load(cls, path: str) -> "Pipeline":
        """Reads and validates a pipeline YAML file."""
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except OSError as e:
            raise PipelineError(f"cannot read pipeline {path}: {e.strerror}") from None
        except UnicodeDecodeError as e:
            raise PipelineError(f"{path}: not a text YAML pipeline (byte {e.start} is not UTF-8)") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
            raise PipelineError(f"{path}{where}: not valid YAML: {getattr(e, 'problem', None) or e}") from None
        return cls.from_dict(data, path)

    def to_dict(self) -> Dict[str, Any]:
        return {"models": list(self.models), "weights": {m: float(self.weights.get(m, 1.0)) for m in self.models},
                "fusion": self.fusion, "distance": self.distance,
                "steps": [{"name": s.name, **{k: v for k, v in s.params.items() if v is not None}} for s in self.steps],
                **({"validation": self.validation} if self.validation else {})}

    def save(self, path: str, header: str = "") -> None:
        """Writes the pipeline YAML atomically; ``header`` lines become ``#`` comments on top."""
        text = "".join(f"# {line}\n" for line in header.splitlines())
        text += yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        with atomic_write(path, "w", encoding="utf-8") as f:
            f.write(text)

    @property
    def aux_models(self) -> List[str]:
        """Feature sets the steps read besides the fused models (e.g. ``subtract``'s auxiliary model)."""
        specs = [(s, STEPS.get(s.name)) for s in self.steps]
        return sorted({s.params[spec.aux_features] for s, spec in specs if spec.aux_features})

    @property
    def needs_train(self) -> bool:
        """A step reads the training features (metric learning)."""
        return any(STEPS.get(s.name).needs_train for s in self.steps)
