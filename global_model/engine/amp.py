"""Device and mixed-precision choices shared by the trainer and the extractor.

``SOLVER.AMP`` / ``TEST.AMP``: ``auto`` = bf16 autocast on a CPU with native bf16 (AVX512-BF16 or
AMX), fp16 on CUDA; ``off`` = fp32; ``bf16`` / ``fp16`` force a dtype. fp16 on CUDA uses a
GradScaler; bf16 needs none.
"""
from __future__ import annotations

import contextlib
from typing import Optional

import torch

from ..config import ConfigError

__all__ = ["DeviceError", "autocast", "cpu_has_native_bf16", "needs_grad_scaler", "resolve_amp", "resolve_device"]

_MODES = ("auto", "off", "bf16", "fp16")


class DeviceError(ConfigError, RuntimeError):
    """A ``MODEL.DEVICE`` this machine cannot use (a RuntimeError too, as torch's own device errors)."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; an unknown name, or ``cuda`` without a GPU, raises
    :class:`DeviceError`."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"MODEL.DEVICE {name!r} is not a torch device; expected auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"MODEL.DEVICE is {name!r} but no CUDA device is available; use 'cpu' or 'auto'")
    return dev


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 natively (otherwise bf16 autocast is slower than fp32)."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    try:
        return torch.backends.mkldnn.is_available() and any(getattr(torch.cpu, p, lambda: False)() for p in probes)
    except RuntimeError:
        return False


def resolve_amp(mode: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype for ``mode`` on ``device``, or None for plain fp32."""
    mode = str(mode).lower()
    if mode not in _MODES:
        raise ConfigError(f"AMP mode {mode!r} (SOLVER.AMP / TEST.AMP) is not one of {', '.join(_MODES)}")
    if mode == "off":
        return None
    if mode == "bf16":
        return torch.bfloat16
    if mode == "fp16":
        if device.type != "cuda":
            raise ConfigError("AMP fp16 (SOLVER.AMP / TEST.AMP) needs a CUDA device; use 'bf16' or 'auto' on CPU")
        return torch.float16
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else None


def needs_grad_scaler(dtype: Optional[torch.dtype], device: torch.device) -> bool:
    return dtype == torch.float16 and device.type == "cuda"


def autocast(device: torch.device, dtype: Optional[torch.dtype]):
    """An autocast context for ``dtype`` (a no-op context when ``dtype`` is None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
