"""The ``MODEL.LOWRES`` keys of octuplet fine-tuning (``MODEL.META_ARCH lowres``)."""
from __future__ import annotations

from yacs.config import CfgNode as CN

from ..config import add_config

__all__ = ["add_lowres_config"]


@add_config("lowres")
def add_lowres_config(cfg: CN) -> None:
    """The low-resolution twin and the octuplet loss; the other loss terms keep their ``LOSS.*`` weights."""
    s = cfg.MODEL.LOWRES = CN()
    s.SCALES = [4.0]  # scale of each image's LR twin (one drawn per image), as make-lr --scale / TEST.LR_SCALE
    s.OCTUPLET_WEIGHT = 1.0
    # On L2-normalised features (NORMALIZE) euclidean distances lie in [0, 2]: a triplet-like margin fits.
    # SNU_ReID used 25 on raw 2048-d vectors, a scale no other model shares.
    s.OCTUPLET_MARGIN = 0.3
    s.OCTUPLET_DISTANCE = "euclidean"  # euclidean | sqeuclidean | cosine
    s.OCTUPLET_NORMALIZE = True
    s.OCTUPLET_TERMS = ["HH", "HL", "LH", "LL"]  # anchor/candidate resolution of the four triplet terms
    s.FEATURE = "triplet_feats"  # the model output the octuplet loss reads (the pooled pre-BNNeck vector)
