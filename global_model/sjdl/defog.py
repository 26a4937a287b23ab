"""SJDL's restorer for ``python -m global_model defog`` (the folder loop is ``engine.restore``'s).

The encoder's stem/layer1 and the decoder stored beside it (``aux/decoder`` entry of any checkpoint
the SJDL trainer writes) make two images: ``enhanced`` (the default) and ``decoded``.
"""
from __future__ import annotations

from ..engine.checkpoint import CheckpointError, load_model_weights
from ..engine.restore import Restorer, register_restorer
from .model import SJDL, build_defog_decoder, defog

__all__ = ["sjdl_restorer"]


@register_restorer("sjdl")
def sjdl_restorer(ckpt: dict, model: SJDL, cfg, path: str) -> Restorer:
    # Checkpoints written before the trainer's auxiliary-module seam keep the decoder at the top level.
    stored = (ckpt.get("aux") or {}).get("decoder", ckpt.get("decoder"))
    if stored is None:
        raise CheckpointError(f"{path}: no 'aux/decoder' entry; defog needs a checkpoint written by the SJDL "
                              f"trainer (MODEL.META_ARCH sjdl)")
    decoder = build_defog_decoder(cfg, model)
    load_model_weights(decoder, stored, source=f"{path} (aux/decoder)")
    decoder.to(next(model.parameters()).device).eval()

    def run(images):
        decoded, enhanced = defog(model, decoder, images)
        return {"enhanced": enhanced, "decoded": decoded}

    return Restorer(("enhanced", "decoded"), run)
