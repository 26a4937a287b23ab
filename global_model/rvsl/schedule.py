"""The three RVSL stages as one config-driven run (the trainer registered for ``MODEL.META_ARCH rvsl``).

``python -m global_model train --config rvsl.yml`` trains the stages of ``MODEL.RVSL.STAGES`` in
order, stage ``k`` in ``OUTPUT_DIR/stage<k>/`` for its ``MODEL.RVSL.STAGE_EPOCHS`` entry (else
``SOLVER.MAX_EPOCHS``) epochs. The first listed stage starts from ``MODEL.RVSL.INIT`` (empty: from
the backbone's initialisation); every later one from the previous stage's ``best.pth`` (its
best validation epoch), or its ``model_final.pth`` without validation. With ``--resume`` every
finished stage (one with ``model_final.pth``) is skipped and the unfinished one continues from its
``last.pth``. At the end the last stage's ``model_final.pth`` (and ``best.pth``, if any) is copied to
``OUTPUT_DIR``, where ``extract`` and ``defog`` find it.
"""
from __future__ import annotations

import logging
import os
import shutil
from typing import Any, Dict, List, Optional

from ..engine.trainer import register_trainer
from .config import check_rvsl_config
from .trainer import RVSLTrainer

__all__ = ["RVSLSchedule", "stage_dir"]

logger = logging.getLogger("global_model.train")


def stage_dir(output_dir: str, stage: int) -> str:
    return os.path.join(output_dir, f"stage{stage}")


def _handoff(folder: str) -> str:
    best = os.path.join(folder, "best.pth")
    return best if os.path.isfile(best) else os.path.join(folder, "model_final.pth")


@register_trainer("rvsl")
class RVSLSchedule:
    """Builds and runs one :class:`RVSLTrainer` per stage; ``train()`` returns the last stage's metrics.

    The first stage still to train is built in the constructor, so a config or data error stops
    ``train`` before anything is written."""

    def __init__(self, cfg, resume: Optional[str] = None, progress: bool = True):
        check_rvsl_config(cfg)
        self.cfg, self.resume, self.progress = cfg, resume, progress
        self.stages: List[int] = list(cfg.MODEL.RVSL.STAGES)
        self.epochs: List[int] = list(cfg.MODEL.RVSL.STAGE_EPOCHS) or [cfg.SOLVER.MAX_EPOCHS] * len(self.stages)
        self.first = next((i for i, k in enumerate(self.stages) if not (resume and self._finished(k))), None)
        self._first_trainer = self.build_stage(self.first) if self.first is not None else None
        self._last_trainer: Optional[RVSLTrainer] = None

    def _finished(self, stage: int) -> bool:
        return os.path.isfile(os.path.join(stage_dir(self.cfg.OUTPUT_DIR, stage), "model_final.pth"))

    def stage_config(self, index: int):
        """The config of stage ``self.stages[index]``: its stage, folder, epochs and starting checkpoint."""
        cfg = self.cfg.clone()
        cfg.defrost()
        stage = self.stages[index]
        cfg.MODEL.RVSL.STAGE = stage
        cfg.OUTPUT_DIR = stage_dir(self.cfg.OUTPUT_DIR, stage)
        cfg.SOLVER.MAX_EPOCHS = int(self.epochs[index])
        if index > 0:
            cfg.MODEL.RVSL.INIT = _handoff(stage_dir(self.cfg.OUTPUT_DIR, self.stages[index - 1]))
        cfg.freeze()
        return cfg

    def build_stage(self, index: int) -> RVSLTrainer:
        cfg = self.stage_config(index)
        logger.info("RVSL stage %d: %d epochs in %s%s", cfg.MODEL.RVSL.STAGE, cfg.SOLVER.MAX_EPOCHS, cfg.OUTPUT_DIR,
                    f", from {cfg.MODEL.RVSL.INIT}" if cfg.MODEL.RVSL.INIT else "")
        return RVSLTrainer(cfg, resume="auto" if self.resume else None, progress=self.progress)

    def train(self) -> Dict[str, float]:
        metrics: Dict[str, float] = {}
        if self.first is None:
            logger.info("RVSL: every stage of %s is finished", self.stages)
        else:
            for index in range(self.first, len(self.stages)):
                trainer = self._first_trainer if index == self.first else self.build_stage(index)
                metrics = trainer.train()
                self._last_trainer = trainer
        last = stage_dir(self.cfg.OUTPUT_DIR, self.stages[-1])
        for name in ("model_final.pth", "best.pth"):
            if os.path.isfile(os.path.join(last, name)):
                shutil.copyfile(os.path.join(last, name), os.path.join(self.cfg.OUTPUT_DIR, name))
        logger.info("RVSL: stage %d's checkpoints copied to %s", self.stages[-1], self.cfg.OUTPUT_DIR)
        return metrics

    def summary(self) -> Dict[str, Any]:
        """``train``'s closing lines: the last trained stage's best validation, the run's checkpoints."""
        out = self.cfg.OUTPUT_DIR
        done = self._last_trainer.summary() if self._last_trainer is not None else {"best_epoch": None,
                                                                                    "best_map": None}
        paths = {"final": os.path.join(out, "model_final.pth"), "best": os.path.join(out, "best.pth"),
                 "last": os.path.join(stage_dir(out, self.stages[-1]), "last.pth")}
        return {"best_epoch": done["best_epoch"], "best_map": done["best_map"],
                "checkpoints": {role: path for role, path in paths.items() if os.path.isfile(path)}}
