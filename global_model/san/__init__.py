"""SAN (Jin et al., AAAI 2020): a global ReID encoder trained with a semantics-aligned texture decoder.

The family in one package: ``config`` (the ``MODEL.SAN`` keys), ``model`` (the encoder and the
SA-Dec decoder), ``losses`` (reconstruction and decoder-feature triplet), ``targets`` (where each
training image's target comes from), ``data`` (targets augmented with the input's flip and crop),
``trainer`` (the decoder as an auxiliary module, one backward per step) and ``panels`` (the library
behind the panels command: input | target | decoded). Importing it registers the ``"san"``
architecture, trainer and config extension; ``MODEL.META_ARCH: san`` imports it on demand.
"""
from . import config, model, trainer  # noqa: F401  (register the "san" config, architecture and trainer)
