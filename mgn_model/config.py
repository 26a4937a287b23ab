"""MGN's config keys, ``MODEL.MGN``: added to the core defaults when ``MODEL.META_ARCH`` is ``mgn``."""
from yacs.config import CfgNode as CN

from global_model.config import add_config

__all__ = ["add_mgn_config"]


@add_config("mgn")
def add_mgn_config(cfg: CN) -> None:
    """Add ``MODEL.MGN`` (in place). The stem..layer3[0] is shared; each branch owns a copy of layer3[1:], layer4."""
    cfg.MODEL.MGN = CN()
    mgn = cfg.MODEL.MGN
    # "g": one global vector (layer4 at stride 2); "hN": global + N horizontal stripes; "vN": global + N
    # vertical (left/right) strips; h/v branches run layer4 at stride 1. AIC20-5th: ["g", "h2", "h3", "v2"].
    mgn.BRANCHES = ["g", "h2", "h3", "v2"]
    # Not MODEL.POOLING / REDUCTION_DIM: MGN's per-vector recipe (max, 512) differs from the global model's (avg, 0).
    mgn.REDUCTION_DIM = 512  # width of every vector (pooled map -> 1x1 conv -> BN)
    mgn.POOLING = "max"  # max | avg, for the global and part vectors
    # Vectors concatenated into the test feature, by name: a branch name ("g", "h2") is its global vector,
    # "h2.0" its first stripe (top / left). [] = all vectors in branch order.
    mgn.TEST_VECTORS = []
