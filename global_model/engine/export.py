"""ONNX export of a trained model's inference graph, verified with onnxruntime before it is written.

``export_onnx(checkpoint, out)`` rebuilds the model from its checkpoint, folds BatchNorm into the
convolutions (``extractor.prepare_for_inference``) and exports the eval-mode forward: a normalised
N×3×H×W float32 batch (H×W = ``INPUT.SIZE_TEST``) in, the raw N×D test feature out. Flip TTA and
L2 normalisation stay outside the graph — :mod:`global_model.engine.onnx_backend` applies them as
the PyTorch extractor does, so they can never be applied twice. The config goes into the file's
metadata, which is all ``extract --backend onnx`` needs besides the file.

Before anything is written the exported graph runs in onnxruntime on a few images (a folder's, or
seeded random ones) through the same preprocessing, flip and normalisation as ``extract``; the
largest absolute difference of the L2-normalised features against the checkpoint's PyTorch model
in float32 must stay within ``tolerance`` (1e-4), or nothing is written. Every architecture whose
eval forward traces (baseline, SJDL's encoder, MGN) exports.
"""
from __future__ import annotations

import glob
import io
import logging
import os
import warnings
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from post_processing.errors import ReidError
from post_processing.fileio import IMAGE_EXTENSIONS, atomic_write

from .extractor import infer_batch, load_model_from_checkpoint, model_fingerprint, prepare_for_inference
from .onnx_backend import META_PREFIX, OnnxModel, infer_batch_onnx

__all__ = ["DEFAULT_OPSET", "ExportError", "ExportResult", "PARITY_TOLERANCE", "export_onnx", "parity_images"]

logger = logging.getLogger("global_model.export")

DEFAULT_OPSET = 17
PARITY_TOLERANCE = 1e-4  # largest |difference| of L2-normalised float32 features accepted
INPUT_NAME, OUTPUT_NAME = "images", "features"


class ExportError(ReidError, RuntimeError):
    """The model could not be exported, or the exported graph does not reproduce it."""


@dataclass
class ExportResult:
    """What ``export_onnx`` wrote and measured."""

    path: str
    feat_dim: int
    size_hw: tuple
    dynamic_batch: bool
    opset: int
    images: int  # how many images the parity check compared (each also flipped when TEST.FLIP)
    max_diff: float  # largest |ONNX − PyTorch| over the L2-normalised features


def parity_images(cfg, folder: Optional[str] = None, count: int = 4, seed: int = 0) -> torch.Tensor:
    """``count`` preprocessed images (N×3×H×W, the test transform of ``cfg``) for the parity check:
    the first image files of ``folder`` in name order, or seeded random RGB images without one."""
    from ..data.image_io import read_image
    from ..data.transforms import build_transforms

    transform = build_transforms(cfg, is_train=False)
    if folder:
        paths = sorted(p for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
                       if p.lower().endswith(IMAGE_EXTENSIONS))[:count]
        if not paths:
            raise ExportError(f"--images {folder}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in it")
        arrays = [read_image(p) for p in paths]
    else:
        rng = np.random.default_rng(seed)
        h, w = cfg.INPUT.SIZE_TEST
        arrays = [rng.integers(0, 256, (h + 16 * i, w + 8 * i, 3), dtype=np.uint8) for i in range(count)]
    return torch.from_numpy(np.stack([transform(a) for a in arrays]))


def _onnx_bytes(graph: torch.nn.Module, example: torch.Tensor, dynamic_batch: bool, opset: int) -> bytes:
    buffer = io.BytesIO()
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings():
        # The TorchScript-based exporter: no onnxscript dependency and several times faster than the
        # torch.export one on these convolutional graphs; the parity check below guards its output.
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx\.")
        try:
            torch.onnx.export(graph, (example,), buffer, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              opset_version=opset, dynamic_axes=axes, do_constant_folding=True, dynamo=False)
        except Exception as exc:  # tracing/symbolic errors come in many types
            first = (str(exc).strip().splitlines() or [""])[0][:400]  # some errors append a whole graph dump
            raise ExportError(f"torch.onnx.export failed at opset {opset}: {type(exc).__name__}: {first}") from exc
    return buffer.getvalue()


def _with_metadata(data: bytes, entries: dict) -> bytes:
    import onnx

    proto = onnx.load_from_string(data)
    for key, value in entries.items():
        proto.metadata_props.add(key=META_PREFIX + key, value=str(value))
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported graph is not valid ONNX: {exc}") from None
    return proto.SerializeToString()


def export_onnx(checkpoint: str, out: str, dynamic_batch: bool = False, opset: int = DEFAULT_OPSET,
                opts: Sequence[str] = (), images: Optional[str] = None, count: int = 4,
                tolerance: float = PARITY_TOLERANCE) -> ExportResult:
    """Export ``checkpoint``'s inference graph to ``out`` (ONNX, batch 1 unless ``dynamic_batch``) and
    verify it against the PyTorch model on ``count`` images (``images`` folder or seeded random);
    raises :class:`ExportError` and writes nothing when the difference exceeds ``tolerance``."""
    for module in ("onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            raise ExportError(f"export needs {module}: pip install 'reid-ensemble[onnx]' "
                              f"(or pip install onnx onnxruntime)") from None
    model, cfg = load_model_from_checkpoint(checkpoint, None, opts, device=torch.device("cpu"))
    probe = parity_images(cfg, images, count)
    with torch.no_grad():
        reference = infer_batch(model, probe, cfg.TEST.FLIP, None, channels_last=False, normalize=True).numpy()
    graph = prepare_for_inference(model, channels_last=False)
    h, w = cfg.INPUT.SIZE_TEST
    data = _onnx_bytes(graph, torch.zeros(1, 3, h, w), dynamic_batch, opset)
    source = model_fingerprint(checkpoint, cfg)
    data = _with_metadata(data, {"config": cfg.dump(), "checkpoint_sha256": source["checkpoint_sha256"],
                                 "fingerprint": source["fingerprint"],
                                 "meta_arch": cfg.MODEL.META_ARCH, "feat_dim": reference.shape[1],
                                 "outside_graph": "flip TTA (TEST.FLIP), L2 normalisation (TEST.NORM)"})
    runtime = OnnxModel(data, name=out)
    got = infer_batch_onnx(runtime, probe.numpy(), cfg.TEST.FLIP, normalize=True)
    max_diff = float(np.abs(got - reference).max())
    if not max_diff <= tolerance:  # also catches NaN
        raise ExportError(f"{out}: the ONNX graph differs from the PyTorch model by {max_diff:.3g} "
                          f"(L2-normalised features, {len(probe)} images) > tolerance {tolerance:g}; not written")
    with atomic_write(out, "wb") as f:
        f.write(data)
    logger.info("exported %s (%s, opset %d) to %s; parity %.2e on %d images", checkpoint, cfg.MODEL.META_ARCH,
                opset, out, max_diff, len(probe))
    return ExportResult(out, int(reference.shape[1]), (h, w), dynamic_batch, opset, len(probe), max_diff)

