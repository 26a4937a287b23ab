"""SJDL (Chen et al., AAAI 2022): a global ReID model trained jointly with a defogging decoder.

The family in one package: ``config`` (the ``MODEL.SJDL`` keys), ``model`` (the encoder and the
decoder), ``losses`` (restoration and real-fog terms), ``trainer`` (two data streams, the decoder
as an auxiliary module, restoration validation), ``metrics`` (PSNR/SSIM and panels) and ``defog``
(the library behind ``python -m global_model defog``). Importing it registers the ``"sjdl"``
architecture, trainer and config extension; ``MODEL.META_ARCH: sjdl`` imports it on demand.
"""
from . import config, defog, model, trainer  # noqa: F401  (register the "sjdl" config, architecture, trainer, restorer)
