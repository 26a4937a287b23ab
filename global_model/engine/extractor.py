"""Feature extraction: the inference path of validation, ``python -m global_model extract`` and ``ensemble search``.

``extract_features`` runs any registered architecture in eval mode (its forward returns the B×D
test feature), batched, with flip TTA (original and mirrored image in one forward, features
averaged) then L2 normalisation, under bf16 autocast + channels_last on a CPU with native bf16 and
AMP on CUDA. ``prepare_for_inference`` folds BatchNorm into the convolutions first (the ``extract``
command does); ``load_model_from_checkpoint`` rebuilds a model from the config its checkpoint stores;
``model_fingerprint`` names the checkpoint + config a feature file was extracted with.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..data.image_io import ImageReadError, clean_read_error
from ..data.records import ImageRecord
from .amp import autocast, resolve_amp, resolve_device
from .checkpoint import CheckpointError, load_checkpoint, load_model_weights, unwrap_model

__all__ = ["extract_features", "extract_features_sharded", "infer_batch", "load_model_from_checkpoint", "model_fingerprint",
           "prepare_for_inference"]

logger = logging.getLogger("global_model.extract")


def prepare_for_inference(model: nn.Module, channels_last: bool = True, inplace: bool = False) -> nn.Module:
    """An eval-mode model for extraction: Conv→BatchNorm pairs folded into the convolutions with
    ``torch.fx`` (about 20% faster on CPU) when the model traces symbolically, else the model as
    is; channels_last when asked. Without ``inplace`` the given model is left untouched."""
    from torch.fx.experimental.optimization import fuse

    model = unwrap_model(model).eval()
    try:
        model = fuse(model, inplace=inplace)
    except Exception as exc:  # data-dependent control flow or untraceable ops: run it unfused
        logger.info("extractor: %s does not trace with torch.fx (%s: %s); running it without BN folding",
                    type(model).__name__, type(exc).__name__, exc)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def infer_batch(model: nn.Module, images: torch.Tensor, flip: bool = True, dtype: Optional[torch.dtype] = None,
                channels_last: bool = True, normalize: bool = True) -> torch.Tensor:
    """Features (float32, B×D) of one preprocessed batch; ``model`` must already be in eval mode."""
    device = images.device
    if channels_last and images.dim() == 4:
        images = images.contiguous(memory_format=torch.channels_last)
    if flip:
        images = torch.cat([images, images.flip(3)])
    with torch.inference_mode(), autocast(device, dtype):
        feats = model(images)
    feats = feats.float()
    if flip:
        n = feats.shape[0] // 2
        feats = (feats[:n] + feats[n:]) * 0.5
    if normalize:
        feats = torch.nn.functional.normalize(feats, dim=1)
    return feats


class _InMemory(torch.utils.data.Dataset):
    """Test-transformed items of images already in memory (H×W×3 uint8 RGB), one per record."""

    def __init__(self, records: Sequence[ImageRecord], images: Sequence[np.ndarray], transform):
        if len(records) != len(images):
            raise ValueError(f"{len(images)} images for {len(records)} records")
        self.records, self.images, self.transform = list(records), list(images), transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, idx: int):
        rec = self.records[idx]
        return {"images": torch.from_numpy(self.transform(self.images[idx], np.random.default_rng(0))),
                "pids": rec.pid, "camids": rec.camid, "paths": rec.path}


def _loader(cfg, records: Sequence[ImageRecord], images: Optional[Sequence[np.ndarray]], split: Optional[str]):
    from ..data.dataset import build_test_loader, collate
    from ..data.transforms import build_transforms

    if images is None:
        return build_test_loader(cfg, records, split=split)
    return torch.utils.data.DataLoader(_InMemory(records, images, build_transforms(cfg, is_train=False, split=split)),
                                       batch_size=cfg.TEST.IMS_PER_BATCH, shuffle=False, collate_fn=collate)


def extract_features(model: nn.Module, records: Sequence[ImageRecord], cfg, device: Optional[torch.device] = None,
                     progress: bool = True, split: Optional[str] = None,
                     images: Optional[Sequence[np.ndarray]] = None) -> Tuple[List[str], np.ndarray]:
    """``(names, feats)`` for ``records`` in order: names are file names, feats N×D float32
    (unit-norm when ``TEST.NORM``). ``split`` (query | gallery | train) selects the test transform
    (``TEST.LR_APPLY``). ``images`` (H×W×3 uint8 RGB per record, e.g. restored by ``defog``'s
    restorer) replace reading the records' files. Leaves the model in the train/eval mode it had."""
    from post_processing.progress import progress_bar

    model = unwrap_model(model)
    device = device or next(model.parameters()).device
    dtype = resolve_amp(cfg.TEST.AMP, device)
    channels_last = bool(cfg.MODEL.CHANNELS_LAST)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    was_training = model.training
    model.eval()
    chunks = []
    try:
        loader = _loader(cfg, records, images, split)
        for batch in progress_bar(loader, progress, desc="extract", unit="batch", leave=False):
            images = batch["images"].to(device, non_blocking=True)
            chunks.append(infer_batch(model, images, cfg.TEST.FLIP, dtype, channels_last, cfg.TEST.NORM).cpu())
    except ImageReadError as exc:
        raise clean_read_error(exc) from None
    finally:
        model.train(was_training)
    feats = torch.cat(chunks).numpy().astype(np.float32, copy=False) if chunks else np.zeros((0, 0), np.float32)
    return [r.name for r in records], feats


def extract_features_sharded(run: Callable[..., Tuple[List[str], np.ndarray]], records: Sequence[ImageRecord], cfg,
                             progress: bool = True, split: Optional[str] = None
                             ) -> Optional[Tuple[List[str], np.ndarray]]:
    """``run(records, cfg, progress=, split=)`` (:func:`extract_features` with its model bound, or the
    ONNX backend's) split across the ranks of a ``torchrun`` process group: each rank extracts one
    contiguous shard of ``records``; rank 0 returns ``(names, feats)`` of all of them in ``records``
    order, the other ranks None. Without a process group it is ``run`` on every record."""
    from .runtime import gather_to_main, rank_and_world, shard_bounds

    rank, world = rank_and_world()
    if world == 1:
        return run(records, cfg, progress=progress, split=split)
    lo, hi = shard_bounds(len(records), rank, world)
    shards = gather_to_main(run(records[lo:hi], cfg, progress=progress and rank == 0, split=split))
    if shards is None:
        return None
    names = [n for shard_names, _ in shards for n in shard_names]
    parts = [f for _, f in shards if len(f)]
    return names, (np.concatenate(parts) if parts else np.zeros((0, 0), np.float32))


def load_model_from_checkpoint(weights: str, cfg=None, opts: Sequence[str] = (), device: Optional[torch.device] = None,
                               ckpt: Optional[dict] = None):
    """``(model, cfg)`` in eval mode from a checkpoint written by the trainer.

    Without ``cfg`` the model is rebuilt from the config stored in the checkpoint (``opts`` apply
    on top). A checkpoint for another architecture raises a CheckpointError listing the
    mismatched, missing and unexpected layers. ``ckpt``: the file ``weights`` already loaded (a
    caller that also reads its other entries loads it once).
    """
    from ..config import load_config_string
    from ..modeling import build_model

    ckpt = load_checkpoint(weights) if ckpt is None else ckpt
    if cfg is None:
        if "cfg" not in ckpt:
            raise CheckpointError(f"{weights}: no stored config; pass --config with the model's YAML")
        cfg = load_config_string(ckpt["cfg"], opts, source=f"config stored in {weights}")
    num_classes = ckpt.get("num_classes")
    if num_classes is None:
        raise CheckpointError(f"{weights}: no 'num_classes' entry; it was not written by this toolkit's trainer")
    device = device or resolve_device(cfg.MODEL.DEVICE)
    # The checkpoint holds every weight: never fetch ImageNet weights (fails offline for
    # competition configs trained with MODEL.PRETRAINED True).
    build_cfg = cfg.clone()
    build_cfg.defrost()
    build_cfg.MODEL.PRETRAINED = False
    build_cfg.MODEL.PRETRAIN_PATH = ""
    model = build_model(build_cfg, int(num_classes))
    load_model_weights(model, ckpt["model"], source=weights)
    return model.to(device).eval(), cfg


# Config keys that say how extraction runs, not which vector comes out: left out of the fingerprint,
# so query and gallery extracted separately with other batch sizes or workers still match.
_RUN_ONLY_KEYS = ("DATALOADER", "DATASETS", "OUTPUT_DIR", "SOLVER", "TEST.IMS_PER_BATCH", "MODEL.DEVICE")


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_fingerprint(weights: str, cfg, defog_with: Optional[str] = None) -> Dict[str, str]:
    """What a feature file records of its model: ``fingerprint`` (16 hex digits of the checkpoint's
    and the config's SHA-256 together), ``checkpoint`` (the path), ``checkpoint_sha256`` and
    ``config_sha256`` (of the config without its run-only keys). Feature files of one model with
    different fingerprints do not belong together (``ensemble fuse`` refuses them). ``defog_with``:
    the SJDL checkpoint that restored the images first (``defog_with`` and ``defog_sha256`` recorded,
    and part of the fingerprint)."""
    ckpt_sha = _file_sha256(weights)
    shown = cfg.clone()
    shown.defrost()
    for key in _RUN_ONLY_KEYS:
        node, _, leaf = key.rpartition(".")
        (shown[node] if node else shown).pop(leaf, None)
    cfg_sha = hashlib.sha256(shown.dump().encode("utf-8")).hexdigest()
    key = f"{ckpt_sha}:{cfg_sha}"
    extra: Dict[str, str] = {}
    if defog_with:
        extra = {"defog_with": str(defog_with), "defog_sha256": _file_sha256(defog_with)}
        key += f":{extra['defog_sha256']}"
    return {"fingerprint": hashlib.sha256(key.encode()).hexdigest()[:16],
            "checkpoint": str(weights), "checkpoint_sha256": ckpt_sha, "config_sha256": cfg_sha, **extra}
