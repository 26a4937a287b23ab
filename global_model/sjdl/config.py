"""SJDL's config keys: the one ``MODEL.SJDL`` node, added to the core defaults for ``MODEL.META_ARCH sjdl``."""
from __future__ import annotations

from yacs.config import CfgNode as CN

from post_processing.errors import ReidUsageError

from ..config import add_config

__all__ = ["SJDLConfigError", "add_sjdl_config"]


class SJDLConfigError(ReidUsageError, ValueError):
    """A ``MODEL.SJDL`` value the model or loss cannot be built with."""


@add_config("sjdl")
def add_sjdl_config(cfg: CN) -> None:
    """The decoder width, the loss weights, the real-fog stream and the restoration validation."""
    s = cfg.MODEL.SJDL = CN()
    s.WIDTH = 64  # decoder channels at 1/4 resolution (half of it at full resolution)
    s.REID_WEIGHT = 1.0  # ReID losses of both classifier blocks (synthetic and real-fog ids)
    s.REST_WEIGHT = 1.0  # restoration (synthetic pairs) and unsupervised (real fog) terms
    s.REST_LOSS = "mse"  # mse | l1, decoded and enhanced [0, 1] images vs the clear image
    s.REAL_PERIOD = 5  # every N iterations a real-fog batch (own PxK sampler) joins the step; 0 = never
    s.REAL_WEIGHT = 1.0
    # Unsupervised real-fog terms (per-pixel means); docs/experiments.md (SJDL) says why these are
    # lower than the published weights.
    s.DC_WEIGHT = 0.05
    s.DC_PATCH = 35  # odd min-filter window of the dark channel, pixels
    s.TV_WEIGHT = 0.05
    s.ENTROPY_WEIGHT = 0.02
    s.ENTROPY_BINS = 64
    s.FFT_WEIGHT = 0.1
    s.FFT_CUTOFF = 0.25  # amplitude shape is compared above this fraction of the Nyquist frequency
    # Paired clear/foggy split scored with PSNR/SSIM each evaluation ("" = off): a DATASETS entry whose
    # query + gallery records have clear twins, e.g. "fvrid(split=syn)=data/fvrid".
    s.VAL_PAIRS = ""
    s.VAL_MAX = 256  # score at most this many pairs (evenly spaced over the split)
    s.VIS = True  # write foggy | decoded | enhanced | clear PNG panels to OUTPUT_DIR/defog_vis each evaluation
    s.VIS_NUM = 4  # panels per evaluation
