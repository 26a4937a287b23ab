"""RVSL (Chen et al., ECCV 2022): hazy-vehicle ReID learnt through cycle domain transfer, in three stages.

The family in one package: ``config`` (``MODEL.RVSL``, ``TEST.RVSL_PATH``), ``model`` (two encoders
around a shared ReID trunk, translators, discriminators, replay pool), ``priors`` (dark channel,
MIDC, haze-line colinearity, TV), ``losses`` (the stage objectives), ``sampler`` (the unlabelled
real streams), ``trainer`` (one stage), ``schedule`` (the three stages chained through checkpoints;
the trainer registered for ``MODEL.META_ARCH rvsl``) and ``restoration`` (defogging and its
PSNR/SSIM). Importing it registers the ``"rvsl"`` config extension, architecture and trainer.
"""
from . import config, model, restoration, schedule  # noqa: F401  (register the "rvsl" config, architecture, trainer, restorer)
