"""MGN part model for the ensemble: registers the ``"mgn"`` architecture with ``global_model.modeling``.

Everything else — data, sampler, transforms, trainer, checkpoints, extractor, CLI — is
``global_model``'s; ``python -m mgn_model train|extract`` runs those with an MGN config.
"""
from . import model  # noqa: F401  (registers "mgn")
