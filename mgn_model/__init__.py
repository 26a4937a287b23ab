"""MGN part model for the ensemble: the ``"mgn"`` architecture and its ``MODEL.MGN`` config keys.

Importing the package registers both (``global_model.families.discover_family("mgn")`` does, when a
config says ``MODEL.META_ARCH: mgn``). Everything else — data, sampler, transforms, trainer,
checkpoints, extractor, commands — is ``global_model``'s; ``python -m mgn_model train|extract`` is an
alias of ``python -m global_model``.
"""
from . import config, model  # noqa: F401  (register the "mgn" config extension and architecture)
