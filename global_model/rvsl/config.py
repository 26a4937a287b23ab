"""RVSL's config keys: the ``MODEL.RVSL`` node and ``TEST.RVSL_PATH``, added for ``MODEL.META_ARCH rvsl``.

Loss weights default to the published ones (ECCV 2022 code, ``stage{1,2,3}_trainer.py``); see
``losses.py`` for where each one applies.
"""
from __future__ import annotations

from yacs.config import CfgNode as CN

from post_processing.errors import ReidUsageError

from ..config import add_config

__all__ = ["PATHS", "RVSLConfigError", "STAGES", "add_rvsl_config", "check_rvsl_config"]

STAGES = (1, 2, 3)
PATHS = ("hazy", "clear", "mean")


class RVSLConfigError(ReidUsageError, ValueError):
    """A ``MODEL.RVSL`` / ``TEST.RVSL_PATH`` value the model, loss or schedule cannot use."""


@add_config("rvsl")
def add_rvsl_config(cfg: CN) -> None:
    """Schedule, modules, data streams, loss weights, priors and validation of the three RVSL stages."""
    r = cfg.MODEL.RVSL = CN()
    # ---- schedule: one train run trains these stages in order, each in OUTPUT_DIR/stage<k>/
    r.STAGES = [1, 2, 3]  # 1 supervised synthetic pairs, 2 + real-clear cycle, 3 + real-hazy cycle
    r.STAGE_EPOCHS = []  # epochs of each listed stage; empty = SOLVER.MAX_EPOCHS each
    r.STAGE = 1  # the stage one stage trainer runs (the schedule sets it)
    r.INIT = ""  # checkpoint the first listed stage starts from (later stages: the previous stage's best.pth)
    # The ID classifier is carried from stage to stage (the synthetic ids are the same); False
    # re-initialises it at every stage start, as the published code does by accident (a renamed layer).
    r.CARRY_CLASSIFIER = True
    # ---- modules
    r.WIDTH = 64  # translator (U-Net decoder) channels
    r.DISC_WIDTH = 64  # PatchGAN channels of the first block (x2, x4, x8 after)
    r.DISC_LR = 2e-4
    r.DISC_BETAS = [0.5, 0.999]
    r.DISC_DECAY_START = 0.5  # discriminator LR decays linearly to 0 from this fraction of a stage's iterations
    r.POOL_SIZE = 50  # replay pool of generated images per discriminator (0 = off)
    # ---- data: the real, unlabelled streams (their train split), shuffled without identity grouping
    r.REAL_CLEAR = "fvrid(split=clear)=fvrid"  # stage 2
    r.REAL_HAZY = "fvrid(split=real)=fvrid"  # stage 3
    r.REAL_BATCH = 18
    # ---- stage 1 weights
    r.S1_REID = 1.0  # CE + triplet (LOSS.*) on the clear and the hazy path
    r.S1_TRANS = 0.5  # SmoothL1 of both translations vs the paired images
    r.S1_FEAT = 0.5  # L1 between the clear-path and hazy-path pooled features
    r.S1_ADV = 0.5  # LSGAN of both translations, each by its own domain's discriminator (mean of the two)
    # ---- stage 2/3 weights: synthetic part
    r.SYN_REID = 10.0
    r.SYN_FEAT = 1.0
    r.SYN_TRANS = 100.0
    # ---- stage 2/3 weights: real part
    r.REAL_FEAT = 1.0
    r.PRIOR = 0.01  # times the sum of the stage's weighted priors
    r.CYCLE = 100.0  # SmoothL1 of the cycled image vs the real input
    r.ADV = 0.5
    r.MIDC = 1.0  # stage 2 priors
    r.CR2 = 1.0
    r.DC = 0.5  # stage 3 priors
    r.TV = 2.0
    r.CR3 = 0.05
    r.DC_PATCH = 35  # odd min-filter window of the dark channel (35 px at 384 px)
    r.AIRLIGHT_TOP = 0.001  # airlight: mean colour of this top fraction of the eroded dark channel
    r.AIRLIGHT_ERODE = 3
    # ---- validation
    r.VAL_IDS = 0  # >0: hold out this many synthetic training ids; validate (and pick best.pth) on them
    r.VAL_PAIRS = ""  # paired split scored with PSNR/SSIM ("" = the held-out ids' pairs, if any)
    r.VAL_MAX = 256
    r.VIS = True  # foggy | restored | clear | rendered-hazy PNG panels in OUTPUT_DIR/defog_vis
    r.VIS_NUM = 4
    cfg.TEST.RVSL_PATH = "mean"  # hazy | clear | mean: which encoder path extraction uses


def check_rvsl_config(cfg: CN) -> None:
    """Raise :class:`RVSLConfigError` naming the key for a value out of range."""
    r = cfg.MODEL.RVSL
    stages = list(r.STAGES)
    if not stages or any(s not in STAGES for s in stages) or stages != sorted(set(stages)):
        raise RVSLConfigError(f"MODEL.RVSL.STAGES must be increasing stages from {list(STAGES)}, got {stages}")
    if r.STAGE_EPOCHS and (len(r.STAGE_EPOCHS) != len(stages) or min(r.STAGE_EPOCHS) < 1):
        raise RVSLConfigError(f"MODEL.RVSL.STAGE_EPOCHS must be empty or one positive count per stage of "
                              f"MODEL.RVSL.STAGES {stages}, got {list(r.STAGE_EPOCHS)}")
    if r.STAGE not in STAGES:
        raise RVSLConfigError(f"MODEL.RVSL.STAGE must be one of {list(STAGES)}, got {r.STAGE}")
    if cfg.TEST.RVSL_PATH not in PATHS:
        raise RVSLConfigError(f"TEST.RVSL_PATH must be one of {', '.join(PATHS)}, got {cfg.TEST.RVSL_PATH!r}")
    for key in ("S1_REID", "S1_TRANS", "S1_FEAT", "S1_ADV", "SYN_REID", "SYN_FEAT", "SYN_TRANS", "REAL_FEAT",
                "PRIOR", "CYCLE", "ADV", "MIDC", "CR2", "DC", "TV", "CR3", "DISC_LR", "POOL_SIZE", "VAL_IDS"):
        if r[key] < 0:
            raise RVSLConfigError(f"MODEL.RVSL.{key} must be >= 0, got {r[key]}")
    if r.DC_PATCH < 1 or r.DC_PATCH % 2 == 0:
        raise RVSLConfigError(f"MODEL.RVSL.DC_PATCH must be an odd positive window, got {r.DC_PATCH}")
    if not 0 < r.AIRLIGHT_TOP <= 1:
        raise RVSLConfigError(f"MODEL.RVSL.AIRLIGHT_TOP must be a fraction in (0, 1], got {r.AIRLIGHT_TOP}")
    if r.REAL_BATCH < 1 or r.WIDTH < 1 or r.DISC_WIDTH < 1:
        raise RVSLConfigError("MODEL.RVSL.REAL_BATCH, WIDTH and DISC_WIDTH must be positive")
    if not 0 <= r.DISC_DECAY_START <= 1:
        raise RVSLConfigError(f"MODEL.RVSL.DISC_DECAY_START must lie in [0, 1], got {r.DISC_DECAY_START}")
