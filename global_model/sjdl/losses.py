"""SJDL training terms: restoration on synthetic pairs, unsupervised defogging priors on real fog.

Every image here is B×3×H×W RGB in [0, 1] (see ``model.to_unit_range``). All terms are means over
the **whole batch** and differentiable in the restored image — no hard histogram, no detached or
constant-wrapped FFT term — so each one trains the decoder (and through it the encoder):

- ``dark_channel_loss``: mean dark channel (per-pixel channel minimum, then a ``patch``×``patch``
  min-pool written as ``-maxpool(-x)``); haze-free images have a dark channel near 0 (He et al.);
- ``total_variation_loss``: mean absolute horizontal + vertical difference;
- ``colour_entropy_loss``: ``log(bins) - H`` with ``H`` the entropy of each colour channel's soft
  histogram (linear interpolation between the two nearest bins, so moving a pixel value moves
  histogram mass and the gradient is defined); fog squeezes the histogram, defogging spreads it;
- ``fft_consistency_loss``: fog (``I = J·t + A·(1−t)`` with smooth ``t``) scales the image's
  spectrum but keeps its phase, so the restored image must keep the foggy input's Fourier phase
  (amplitude-weighted ``1 − cos Δφ``) and the *shape* of its high-frequency amplitude spectrum
  (L1 between amplitude spectra above ``cutoff`` × Nyquist, each divided by its mean, which
  leaves the global contrast gain of defogging free).

``SJDLLoss`` combines them with the ReID losses of ``modeling.losses`` for the two classifier
blocks (synthetic ids ``0..S-1``, real ids ``S..C-1``). Option errors name their ``MODEL.SJDL`` key.
"""
from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..modeling.losses import CLASS_SCORE_KEYS, build_loss
from .config import SJDLConfigError
from .model import to_unit_range

__all__ = ["SJDLLoss", "colour_entropy_loss", "dark_channel", "dark_channel_loss", "fft_consistency_loss",
           "restoration_loss", "total_variation_loss", "unsupervised_losses"]

REST_LOSSES = ("mse", "l1")
UNSUPERVISED = ("dark", "tv", "entropy", "fft")


def _check_images(x: torch.Tensor, what: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{what} must be a B×3×H×W image batch, got shape {tuple(x.shape)}")


def restoration_loss(decoded: torch.Tensor, enhanced: torch.Tensor, clear: torch.Tensor,
                     kind: str = "mse") -> torch.Tensor:
    """Mean of the decoded and enhanced images' MSE (or L1) to the clear image."""
    if kind not in REST_LOSSES:
        raise SJDLConfigError(f"MODEL.SJDL.REST_LOSS must be one of {', '.join(REST_LOSSES)}, got {kind!r}")
    fn = F.mse_loss if kind == "mse" else F.l1_loss
    return 0.5 * (fn(decoded, clear) + fn(enhanced, clear))


def dark_channel(images: torch.Tensor, patch: int = 35) -> torch.Tensor:
    """B×1×H×W dark channel: channel minimum, then a ``patch``×``patch`` min filter (stride 1)."""
    _check_images(images, "dark_channel input")
    if patch < 1 or patch % 2 == 0:
        raise SJDLConfigError(f"MODEL.SJDL.DC_PATCH must be an odd positive window size, got {patch}")
    return -F.max_pool2d(-images.amin(1, keepdim=True), patch, stride=1, padding=patch // 2)


def dark_channel_loss(images: torch.Tensor, patch: int = 35) -> torch.Tensor:
    return dark_channel(images, patch).mean()


def total_variation_loss(images: torch.Tensor) -> torch.Tensor:
    _check_images(images, "total_variation input")
    return ((images[..., 1:, :] - images[..., :-1, :]).abs().mean()
            + (images[..., :, 1:] - images[..., :, :-1]).abs().mean())


def colour_entropy_loss(images: torch.Tensor, bins: int = 64, eps: float = 1e-8) -> torch.Tensor:
    """``log(bins)`` minus the mean entropy of the per-image, per-channel soft histograms (≥ 0)."""
    _check_images(images, "colour_entropy input")
    if bins < 2:
        raise SJDLConfigError(f"MODEL.SJDL.ENTROPY_BINS must be at least 2, got {bins}")
    x = images.clamp(0.0, 1.0).flatten(2).flatten(0, 1) * (bins - 1)  # (B·3) × HW, in bin units
    lower = x.detach().floor().clamp(max=bins - 2)
    upper_w = x - lower  # gradient flows through the interpolation weight
    index = lower.long()
    hist = x.new_zeros(x.shape[0], bins).scatter_add(1, index, 1.0 - upper_w).scatter_add(1, index + 1, upper_w)
    p = hist / x.shape[1]
    entropy = -(p * torch.log(p + eps)).sum(1)
    return math.log(bins) - entropy.mean()


def fft_consistency_loss(restored: torch.Tensor, foggy: torch.Tensor, cutoff: float = 0.25,
                         eps: float = 1e-8) -> torch.Tensor:
    """Phase agreement with the foggy input plus high-frequency amplitude-shape agreement (see module doc)."""
    _check_images(restored, "fft_consistency restored image")
    if restored.shape != foggy.shape:
        raise ValueError(f"restored {tuple(restored.shape)} and foggy {tuple(foggy.shape)} images differ in shape")
    if not 0.0 <= cutoff < 1.0:
        raise SJDLConfigError(f"MODEL.SJDL.FFT_CUTOFF must lie in [0, 1) (a fraction of the Nyquist frequency), "
                              f"got {cutoff}")
    fo = torch.fft.rfft2(restored, norm="ortho")
    fi = torch.fft.rfft2(foggy, norm="ortho")
    amp_o = torch.sqrt(fo.real ** 2 + fo.imag ** 2 + eps)
    amp_i = torch.sqrt(fi.real ** 2 + fi.imag ** 2 + eps)
    cos = (fo.real * fi.real + fo.imag * fi.imag) / (amp_o * amp_i)
    weight = amp_i / amp_i.sum((-2, -1), keepdim=True)
    phase = ((1.0 - cos) * weight).sum((-2, -1)).mean()
    h, w = restored.shape[-2:]
    fy = torch.fft.fftfreq(h, device=restored.device).abs().view(-1, 1) * 2.0  # 1 = Nyquist
    fx = torch.fft.rfftfreq(w, device=restored.device).view(1, -1) * 2.0
    high = torch.sqrt(fy ** 2 + fx ** 2) > cutoff
    if not bool(high.any()):
        return phase
    ho, hi = amp_o[..., high], amp_i[..., high]
    shape = (ho / ho.mean(-1, keepdim=True) - hi / hi.mean(-1, keepdim=True)).abs().mean()
    return phase + shape


def unsupervised_losses(restored: torch.Tensor, foggy: torch.Tensor, dc_patch: int = 35, entropy_bins: int = 64,
                        fft_cutoff: float = 0.25, terms: Sequence[str] = UNSUPERVISED) -> Dict[str, torch.Tensor]:
    """The real-fog ``terms`` (names of ``UNSUPERVISED``) of ``restored``, whose input was ``foggy``."""
    fns = {"dark": lambda: dark_channel_loss(restored, dc_patch), "tv": lambda: total_variation_loss(restored),
           "entropy": lambda: colour_entropy_loss(restored, entropy_bins),
           "fft": lambda: fft_consistency_loss(restored, foggy, fft_cutoff)}
    unknown = [t for t in terms if t not in fns]
    if unknown:
        raise ValueError(f"unknown unsupervised term(s) {unknown}; known: {', '.join(UNSUPERVISED)}")
    return {t: fns[t]() for t in terms}


def _rows(outputs: dict, rows: slice, cols: slice) -> dict:
    """The model output lists restricted to batch ``rows`` (class scores also to classifier block ``cols``).

    Every key is kept, so a loss term reading a new model output works for SJDL too; a value that
    is not a list of per-row tensors is an error, not silently dropped.
    """
    out = {}
    for key, value in outputs.items():
        tensors = [value] if isinstance(value, torch.Tensor) else value
        if not isinstance(tensors, (list, tuple)) or not all(isinstance(t, torch.Tensor) for t in tensors):
            raise ValueError(f"model output {key!r} is not a tensor or a list of tensors (one row per image); the "
                             f"SJDL loss cannot split it into synthetic and real-fog rows")
        out[key] = [t[rows, cols] if key in CLASS_SCORE_KEYS else t[rows] for t in tensors]
    return out


class SJDLLoss(nn.Module):
    """The SJDL objective of one step, with the ``(outputs, batch) -> (total, parts)`` loss contract.

    ``batch["images"]`` holds the synthetic-pair rows (labels ``batch["pids"]``, clear twins
    ``batch["clear"]`` where ``batch["has_clear"]``) followed, on real-fog steps, by real foggy
    rows labelled ``batch["real_pids"]`` (ids ``S..C-1``). ``outputs`` is the training network's
    output for all rows: the model's ``logits``/``triplet_feats``/``center_feats`` plus the
    decoder's ``decoded`` and ``enhanced`` [0, 1] images. Then::

        total = REID·reid(syn) + REST·restoration
                + REAL·(REID·reid(real) + REST·Σ_k W_k·(term_k(decoded) + term_k(enhanced)) / 2)

    ``parts`` holds unweighted floats: the ReID terms (``ce``, ``triplet`` ... and ``real_*``),
    ``rest`` and the unsupervised terms (``dark``, ``tv``, ``entropy``, ``fft``).
    """

    def __init__(self, cfg, num_syn_ids: int, num_real_ids: int, feat_dim: int):
        super().__init__()
        s = cfg.MODEL.SJDL
        for key in ("REID_WEIGHT", "REST_WEIGHT", "REAL_WEIGHT", "DC_WEIGHT", "TV_WEIGHT", "ENTROPY_WEIGHT",
                    "FFT_WEIGHT"):
            if s[key] < 0:
                raise SJDLConfigError(f"MODEL.SJDL.{key} must be >= 0, got {s[key]}")
        if s.REST_LOSS not in REST_LOSSES:
            raise SJDLConfigError(f"MODEL.SJDL.REST_LOSS must be one of {', '.join(REST_LOSSES)}, got {s.REST_LOSS!r}")
        self.num_syn_ids, self.num_real_ids = int(num_syn_ids), int(num_real_ids)
        self.reid_weight, self.rest_weight, self.real_weight = s.REID_WEIGHT, s.REST_WEIGHT, s.REAL_WEIGHT
        self.rest_kind = s.REST_LOSS
        self.term_weights = {"dark": s.DC_WEIGHT, "tv": s.TV_WEIGHT, "entropy": s.ENTROPY_WEIGHT, "fft": s.FFT_WEIGHT}
        self.dc_patch, self.entropy_bins, self.fft_cutoff = s.DC_PATCH, s.ENTROPY_BINS, s.FFT_CUTOFF
        self.mean, self.std = tuple(cfg.INPUT.PIXEL_MEAN), tuple(cfg.INPUT.PIXEL_STD)
        self.syn = build_loss(cfg, self.num_syn_ids, feat_dim)
        self.real = build_loss(cfg, self.num_real_ids, feat_dim) if self.num_real_ids else None

    def forward(self, outputs: dict, batch: dict) -> Tuple[torch.Tensor, Dict[str, float]]:
        n, s_ids = len(batch["pids"]), self.num_syn_ids
        parts: Dict[str, torch.Tensor] = {}
        outputs = dict(outputs)
        decoded, enhanced = outputs.pop("decoded"), outputs.pop("enhanced")
        with torch.autocast(device_type=decoded.device.type, enabled=False):
            decoded, enhanced = decoded.float(), enhanced.float()
            reid, reid_parts = self.syn(_rows(outputs, slice(0, n), slice(0, s_ids)), batch)
            total = self.reid_weight * reid
            has_clear = batch.get("has_clear")
            if "clear" in batch and has_clear is not None and bool(has_clear.any()):
                keep = has_clear.to(decoded.device)
                clear = to_unit_range(batch["clear"][keep].float(), self.mean, self.std)
                parts["rest"] = restoration_loss(decoded[:n][keep], enhanced[:n][keep], clear, self.rest_kind)
                total = total + self.rest_weight * parts["rest"]
            if "real_pids" in batch:
                if self.real is None:
                    raise ValueError("the batch has real-fog rows but the SJDL loss was built without real-fog ids")
                reid_r, real_parts = self.real(_rows(outputs, slice(n, None), slice(s_ids, None)),
                                               {"pids": batch["real_pids"] - s_ids})
                foggy = to_unit_range(batch["images"][n:].float(), self.mean, self.std)
                active = [k for k, w in self.term_weights.items() if w > 0]
                dec, enh = (unsupervised_losses(img[n:], foggy, self.dc_patch, self.entropy_bins, self.fft_cutoff,
                                                active) for img in (decoded, enhanced))
                unsup = decoded.new_zeros(())
                for name in active:
                    parts[name] = 0.5 * (dec[name] + enh[name])
                    unsup = unsup + self.term_weights[name] * parts[name]
                total = total + self.real_weight * (self.reid_weight * reid_r + self.rest_weight * unsup)
                reid_parts.update({f"real_{k}": v for k, v in real_parts.items()})
        return total, {**reid_parts, **{k: float(v.detach()) for k, v in parts.items()}}
