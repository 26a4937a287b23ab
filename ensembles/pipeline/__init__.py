"""The post-processing pipeline: the step registry, the pipeline YAML model, the state and the runner.

A step is declared once, with :func:`register_step` (see :mod:`.schema`); without a YAML the
``ensemble`` options build the steps in :func:`canonical_order`, the data-flow order (metric
learning, track averaging, DBA/QE, camera terms, re-ranking, track expansion). The built-in steps
are in :mod:`ensembles.steps`.
"""
from .model import TOP_LEVEL_KEYS, Pipeline, Step
from .schema import (DISTANCES, FEATURES, RANKING, STAGE_NAMES, STEPS, Param, PipelineError, StepSpec,
                     canonical_order, register_step)
from .state import DENSE_RERANK_MAX, Labels, State, run_pipeline

__all__ = ["DENSE_RERANK_MAX", "DISTANCES", "FEATURES", "RANKING", "STAGE_NAMES", "STEPS", "TOP_LEVEL_KEYS",
           "Labels", "Param", "Pipeline", "PipelineError", "State", "Step", "StepSpec", "canonical_order",
           "register_step", "run_pipeline"]
