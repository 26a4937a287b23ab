"""Running an exported model with onnxruntime: ``extract --backend onnx`` and the export's parity check.

An exported file (see :mod:`global_model.engine.export`) holds the model's inference graph, which
maps a normalised B×3×H×W float32 batch to the raw B×D features, and in its metadata the config
the model was trained with. Flip TTA and L2 normalisation stay outside the graph and run here
exactly as :func:`global_model.engine.extractor.infer_batch` runs them in PyTorch, so features of
one model match whichever backend extracted them (the export command measures it).
"""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from post_processing.errors import ReidError

from ..data.image_io import ImageReadError, clean_read_error
from ..data.records import ImageRecord

__all__ = ["META_CONFIG", "META_PREFIX", "OnnxError", "OnnxModel", "extract_features_onnx", "infer_batch_onnx",
           "load_onnx_model"]

logger = logging.getLogger("global_model.extract")

META_PREFIX = "reid_ensemble."
META_CONFIG = META_PREFIX + "config"  # the full YAML config of the exported checkpoint


class OnnxError(ReidError, RuntimeError):
    """An ONNX file that cannot be read or run, or that was not written by ``export``."""


def _runtime():
    try:
        import onnxruntime
    except ImportError:
        raise OnnxError("the ONNX backend needs onnxruntime: pip install 'reid-ensemble[onnx]' "
                        "(or pip install onnx onnxruntime)") from None
    return onnxruntime


class OnnxModel:
    """An exported model in an onnxruntime session: ``model(batch)`` maps a normalised N×3×H×W
    float32 array to N×D raw features, one graph-sized chunk at a time when its batch is fixed.

    ``source`` is a file path or the serialised model (bytes); ``metadata`` holds the
    ``reid_ensemble.*`` entries the export wrote (``config`` among them).
    """

    def __init__(self, source, name: Optional[str] = None, device: str = "cpu"):
        ort = _runtime()
        self.name = name or (source if isinstance(source, str) else "<in-memory ONNX model>")
        available = ort.get_available_providers()
        wanted = (["CUDAExecutionProvider"] if device != "cpu" else []) + ["CPUExecutionProvider"]
        providers = [p for p in wanted if p in available] or available
        try:
            self.session = ort.InferenceSession(source, providers=providers)
            self.providers = self.session.get_providers()
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/NoSuchFile types
            raise OnnxError(f"{self.name}: onnxruntime cannot load it ({type(exc).__name__}: {exc})") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise OnnxError(f"{self.name}: expected one N×3×H×W image input, found "
                            f"{[(i.name, i.shape) for i in inputs]}")
        self.input_name = inputs[0].name
        batch, _, height, width = inputs[0].shape
        self.batch = batch if isinstance(batch, int) else None  # None: any batch size
        self.size_hw = (height, width)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata: Dict[str, str] = {k[len(META_PREFIX):]: v for k, v in meta.items() if k.startswith(META_PREFIX)}

    def config(self, opts: Sequence[str] = ()):
        """The config stored at export (``opts`` on top), as ``extract`` needs it for preprocessing."""
        from ..config import load_config_string

        if "config" not in self.metadata:
            raise OnnxError(f"{self.name}: no '{META_CONFIG}' metadata; it was not written by "
                            f"`python -m global_model export`")
        cfg = load_config_string(self.metadata["config"], opts, source=f"config stored in {self.name}")
        if tuple(cfg.INPUT.SIZE_TEST) != tuple(self.size_hw):
            raise OnnxError(f"{self.name}: the graph takes {self.size_hw[0]}×{self.size_hw[1]} images but "
                            f"INPUT.SIZE_TEST is {list(cfg.INPUT.SIZE_TEST)}; the input size is fixed at export")
        return cfg

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.float32)
        if self.batch is None:
            return self._run(images)
        if len(images) % self.batch:
            raise OnnxError(f"{self.name}: the graph takes batches of exactly {self.batch} images, got {len(images)}")
        return np.concatenate([self._run(images[i:i + self.batch]) for i in range(0, len(images), self.batch)])

    def _run(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: images})[0], dtype=np.float32)


def load_onnx_model(path: str, opts: Sequence[str] = ()):
    """``(model, cfg)`` for extraction from a file written by ``export``: the session (on the GPU when
    onnxruntime has one, unless ``MODEL.DEVICE`` is ``cpu``) and the stored config with ``opts`` on top."""
    import os

    if not os.path.isfile(path):
        raise OnnxError(f"--onnx {path}: no such file")
    model = OnnxModel(path, device="auto")
    cfg = model.config(opts)
    if str(cfg.MODEL.DEVICE) == "cpu" and model.providers[0] != "CPUExecutionProvider":
        model = OnnxModel(path, device="cpu")
    return model, cfg


def infer_batch_onnx(model: OnnxModel, images: np.ndarray, flip: bool = True, normalize: bool = True) -> np.ndarray:
    """Features (float32, B×D) of one preprocessed batch: the ONNX twin of ``extractor.infer_batch``
    (original and mirrored image averaged, then L2-normalised with the same epsilon)."""
    images = np.asarray(images, dtype=np.float32)
    if flip:
        images = np.concatenate([images, images[..., ::-1]])
    feats = model(images)
    if flip:
        n = feats.shape[0] // 2
        feats = (feats[:n] + feats[n:]) * np.float32(0.5)
    if normalize:
        norms = np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), np.float32(1e-12))
        feats = feats / norms
    return feats.astype(np.float32, copy=False)


def extract_features_onnx(model: OnnxModel, records: Sequence[ImageRecord], cfg, progress: bool = True,
                          split: Optional[str] = None) -> Tuple[List[str], np.ndarray]:
    """``(names, feats)`` for ``records`` in order, as ``extractor.extract_features`` returns them,
    computed by ``model`` (same loader, transform of ``split``, flip TTA and normalisation; always float32)."""
    from post_processing.progress import progress_bar

    from ..data.dataset import build_test_loader

    chunks = []
    try:
        loader = build_test_loader(cfg, records, split=split)
        for batch in progress_bar(loader, progress, desc="extract (onnx)", unit="batch", leave=False):
            chunks.append(infer_batch_onnx(model, batch["images"].numpy(), cfg.TEST.FLIP, cfg.TEST.NORM))
    except ImageReadError as exc:
        raise clean_read_error(exc) from None
    feats = np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
    return [r.name for r in records], feats
