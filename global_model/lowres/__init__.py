"""Low-resolution ReID fine-tuning with the octuplet loss (SNU_ReID's ``finetune_octuplet``), as the
``lowres`` family (``MODEL.META_ARCH lowres``).

``config`` adds the ``MODEL.LOWRES`` keys, ``trainer`` the fine-tuning trainer: it starts from a
trained checkpoint (``MODEL.WEIGHTS``), makes a low-resolution twin of every training image on the
fly, runs both through one forward and adds the octuplet loss
(:mod:`global_model.modeling.octuplet`) to the loss terms whose weight is > 0. The model is the
baseline architecture (registered again as ``lowres``), so a baseline, CTL or LR-trained checkpoint
loads in full and the fine-tuned checkpoint extracts like any global model.
"""
from . import config, trainer  # noqa: F401  (register the "lowres" config, architecture and trainer)
