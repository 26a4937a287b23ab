"""Checkpoint files: atomic save, safe load, RNG capture/restore, and weight loading with clear errors.

A training checkpoint is a dict with ``model``, ``optimizer``, ``scheduler``, ``scaler``,
``epoch`` (last finished), ``iteration``, ``best_map``, ``rng``, ``sampler`` and ``cfg`` (the
full YAML dump, so ``extract`` can rebuild the model). Everything is stored as tensors and plain
containers so it loads with ``torch.load(weights_only=True)``: a checkpoint cannot run code.
"""
from __future__ import annotations

import logging
import random
from typing import Dict, List, Mapping, Tuple

import numpy as np
import torch
from torch import nn

from post_processing.fileio import atomic_write
from post_processing.errors import ReidError

__all__ = ["CheckpointError", "capture_rng_state", "load_checkpoint", "load_matching_weights", "load_model_weights",
           "restore_rng_state", "save_checkpoint", "unwrap_model"]

logger = logging.getLogger("global_model.train")


class CheckpointError(ReidError, RuntimeError):
    """A checkpoint that is missing, unreadable, or does not fit the model it is loaded into."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model inside DistributedDataParallel / DataParallel wrappers."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


def save_checkpoint(path: str, state: Mapping) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: never a half-written file."""
    with atomic_write(path, "wb") as f:
        torch.save(dict(state), f)


def load_checkpoint(path: str, map_location="cpu") -> Dict:
    """Load a checkpoint (tensors and plain containers only) or raise a CheckpointError naming the file.

    A bare ``state_dict`` (e.g. exported weights) is returned as ``{"model": state_dict}``.
    """
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except Exception as exc:  # unpickling errors have many types; all mean "not a usable checkpoint"
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, got {type(ckpt).__name__}")
    if "model" not in ckpt:
        if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
            return {"model": ckpt}
        raise CheckpointError(f"{path}: no 'model' entry (keys: {', '.join(map(str, ckpt))})")
    return ckpt


def load_model_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state_dict`` strictly; on any mismatch raise a CheckpointError listing the layers.

    Mismatched shapes are listed with both shapes, then missing and unexpected keys, so a weights
    file for another architecture says what differs instead of a bare size-mismatch traceback.
    """
    model = unwrap_model(model)
    state_dict = {(k[7:] if k.startswith("module.") else k): v for k, v in state_dict.items()}
    own = model.state_dict()
    mismatched = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                  for k, v in state_dict.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    if mismatched or missing or unexpected:
        def block(title: str, items: List[str]) -> str:
            if not items:
                return ""
            more = f"\n    ... and {len(items) - 10} more" if len(items) > 10 else ""
            return f"\n  {title} ({len(items)}):\n    " + "\n    ".join(items[:10]) + more

        raise CheckpointError(
            f"{source} does not fit the model {type(model).__name__} (is it for another architecture "
            f"or backbone?)" + block("mismatched shapes", mismatched) + block("missing in checkpoint", missing)
            + block("unexpected in checkpoint", unexpected))
    model.load_state_dict(state_dict, strict=True)


def load_matching_weights(model: nn.Module, path: str) -> Tuple[List[str], List[str]]:
    """``MODEL.WEIGHTS``: copy every tensor of the checkpoint at ``path`` whose name and shape match a
    tensor of ``model``; the others (a classifier for another number of ids, layers the checkpoint
    lacks) keep what the model was built with. Logs what was loaded and skipped and returns
    ``(loaded, skipped)`` names of the model's tensors. Unlike ``--resume`` nothing but weights is
    restored (no optimizer, schedule or epoch), and unlike ``MODEL.PRETRAIN_PATH`` (ImageNet weights
    of the backbone) it reads a whole ReID model. A checkpoint with no matching tensor is refused."""
    stored = load_checkpoint(path)["model"]
    stored = {(k[7:] if k.startswith("module.") else k): v for k, v in stored.items()}
    model = unwrap_model(model)
    own = model.state_dict()
    loaded = [k for k, v in own.items() if k in stored and tuple(stored[k].shape) == tuple(v.shape)]
    if not loaded:
        raise CheckpointError(f"MODEL.WEIGHTS {path}: none of its {len(stored)} tensors matches a tensor of the model "
                              f"{type(model).__name__} by name and shape (a checkpoint of another architecture?)")
    skipped = [k for k in own if k not in set(loaded)]
    model.load_state_dict({k: stored[k] for k in loaded}, strict=False)
    unused = [k for k in stored if k not in own]
    logger.info("MODEL.WEIGHTS %s: loaded %d of the model's %d tensors", path, len(loaded), len(own))
    for name in skipped:
        why = (f"shape {tuple(stored[name].shape)} in the checkpoint, {tuple(own[name].shape)} in the model"
               if name in stored else "not in the checkpoint")
        logger.info("MODEL.WEIGHTS: kept the new %s (%s)", name, why)
    if unused:
        logger.info("MODEL.WEIGHTS: %d checkpoint tensors the model has no place for: %s", len(unused),
                    ", ".join(unused[:10]) + (" ..." if len(unused) > 10 else ""))
    return loaded, skipped


def capture_rng_state() -> Dict:
    """Python, numpy and torch (and CUDA) RNG states as tensors/ints, so resume continues them."""
    np_state = np.random.get_state()
    state = {"python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
             "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
