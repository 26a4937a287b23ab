"""SAN's config keys: the one ``MODEL.SAN`` node, added to the core defaults for ``MODEL.META_ARCH san``."""
from __future__ import annotations

from yacs.config import CfgNode as CN

from post_processing.errors import ReidUsageError

from ..config import add_config

__all__ = ["SANConfigError", "TARGET_MODES", "add_san_config"]

TARGET_MODES = ("texture", "reconstruct")


class SANConfigError(ReidUsageError, ValueError):
    """A ``MODEL.SAN`` value the model, loss or data cannot be built with."""


@add_config("san")
def add_san_config(cfg: CN) -> None:
    """Targets, decoder widths, loss weights and the decoder's optimizer (published values noted)."""
    s = cfg.MODEL.SAN = CN()
    # texture: one target image per training image under TARGET_DIR (same relative path as the image
    # inside its DATASETS.TRAIN root, any image extension), e.g. the synthetic benchmark's san_targets/.
    # reconstruct: the weaker fallback, the target is the clear twin of a foggy image or the image itself.
    s.TARGET = "texture"
    s.TARGET_DIR = "san_targets"  # relative paths are inside DATASETS.ROOT
    # Channels of the 1x1 embedding and of the four up-sampling blocks' outputs (published 512..16).
    s.WIDTHS = [512, 256, 64, 32, 16]
    s.REC_WEIGHT = 1.0  # L1 reconstruction (published 1)
    s.TR_WEIGHT = 1.0  # decoder-feature triplet, summed over the four decoder stages (published 1)
    s.TR_MARGIN = 0.3  # on MSE distances between decoder maps (published 0.3)
    # 0: the decoder is in the main, scheduled optimizer; > 0: its own Adam at this rate with betas
    # (0.5, 0.999), stepped after the same backward (the published decoder optimizer used 1e-5).
    s.DECODER_LR = 0.0
