"""RVSL's stage objectives: the generator terms of one step and the discriminators' LSGAN losses.

:func:`generator_outputs` wires the networks for a stage (run under autocast); :class:`RVSLLoss`
turns those outputs into unweighted terms and their weighted sum (in float32). Images are [0, 1].

Synthetic pairs (every stage): ``C`` and its foggy twin ``H``; ``C̃ = to_clear(E_H(H))``,
``H̃ = to_hazy(E_C(C))``; terms ``reid_clear``/``reid_hazy`` (``LOSS.*`` CE + triplet of each path,
one shared classifier), ``trans`` (SmoothL1(C̃, C) + SmoothL1(H̃, H)), ``feat`` (L1 between the
two paths' pooled features). Stage 1 adds ``adv``: each translation judged by the discriminator of
its *own* domain, ``(LSGAN(D_C(C̃)) + LSGAN(D_H(H̃))) / 2``.

Stage 2 (real clear ``R``, cycle R → R′ (hazy) → R″ (clear)): ``real_feat`` (L1 of the two paths'
features), ``midc`` and ``cr`` (priors of R′ against R), ``cycle`` (SmoothL1(R″, R)) and ``real_adv``
(``(LSGAN(D_H(R′)) + LSGAN(D_C(R″))) / 2``). Stage 3 (real hazy ``Q``, cycle Q → Q′ (clear) →
Q″ (hazy)): ``real_feat``, ``dc`` and ``tv`` of Q′, ``cr`` of (Q′, Q), ``cycle`` (SmoothL1(Q″, Q))
and ``real_adv`` (``(LSGAN(D_C(Q′)) + LSGAN(D_H(Q″))) / 2``). The published code trains one
discriminator per stage on one domain and applies its term to the other; here ``D_C`` only ever
sees clear images and ``D_H`` hazy ones (:func:`discriminator_pairs`).

Weights (``MODEL.RVSL``, published defaults): stage 1 ``S1_REID`` 1, ``S1_TRANS`` 0.5, ``S1_FEAT``
0.5, ``S1_ADV`` 0.5; stages 2–3 ``SYN_REID`` 10, ``SYN_FEAT`` 1, ``SYN_TRANS`` 100, ``REAL_FEAT`` 1,
``CYCLE`` 100, ``ADV`` 0.5 and ``PRIOR`` 0.01 × (stage 2: ``MIDC`` 1, ``CR2`` 1; stage 3: ``DC`` 0.5,
``TV`` 2, ``CR3`` 0.05).
"""
from __future__ import annotations

from typing import Dict, Mapping, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..modeling.losses import build_loss
from .model import RVSL, normalise, to_unit
from .priors import colinear_loss, dark_channel_loss, midc_loss, total_variation_loss

__all__ = ["RVSLLoss", "discriminator_loss", "discriminator_pairs", "generator_outputs", "lsgan", "stage_weights"]

REAL_STREAM = {2: "real_clear", 3: "real_hazy"}


def lsgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss: MSE to all-ones (real) or all-zeros (fake)."""
    return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))


def stage_weights(cfg, stage: int) -> Dict[str, float]:
    """The weight of every generator term of ``stage``."""
    r = cfg.MODEL.RVSL
    if stage == 1:
        return {"reid_clear": r.S1_REID, "reid_hazy": r.S1_REID, "trans": r.S1_TRANS, "feat": r.S1_FEAT,
                "adv": r.S1_ADV}
    w = {"reid_clear": r.SYN_REID, "reid_hazy": r.SYN_REID, "trans": r.SYN_TRANS, "feat": r.SYN_FEAT,
         "real_feat": r.REAL_FEAT, "cycle": r.CYCLE, "real_adv": r.ADV}
    if stage == 2:
        w.update(midc=r.PRIOR * r.MIDC, cr=r.PRIOR * r.CR2)
    else:
        w.update(dc=r.PRIOR * r.DC, tv=r.PRIOR * r.TV, cr=r.PRIOR * r.CR3)
    return w


def _translate(model: RVSL, translator: nn.Module, images: torch.Tensor, domain: str):
    """``(translated [0, 1] image, encoder's layer1 map)`` of a normalised batch through ``domain``'s encoder."""
    layer1, skip = model.encoder(domain)(images)
    return translator(layer1, skip, images.shape[-2:]), layer1


def generator_outputs(model: RVSL, aux: Mapping[str, nn.Module], batch: Dict, stage: int, mean, std) -> Dict:
    """The images, features, ReID outputs and discriminator scores the stage's terms need."""
    to_clear, to_hazy = aux["to_clear"], aux["to_hazy"]
    d_clear, d_hazy = aux["disc_clear"], aux["disc_hazy"]
    hazy_in, clear_in = batch["images"], batch["clear"]
    gc, l1_h = _translate(model, to_clear, hazy_in, "hazy")
    gf, l1_c = _translate(model, to_hazy, clear_in, "clear")
    out = {"clear": to_unit(clear_in, mean, std), "foggy": to_unit(hazy_in, mean, std), "gc": gc, "gf": gf,
           "reid_clear": model.embed(l1_c), "reid_hazy": model.embed(l1_h)}
    if stage == 1:
        out.update(d_gc=d_clear(gc), d_gf=d_hazy(gf))
        return out
    real = batch[REAL_STREAM[stage]]["images"]
    first, second = ("clear", "hazy") if stage == 2 else ("hazy", "clear")
    t1, t2 = (to_hazy, to_clear) if stage == 2 else (to_clear, to_hazy)
    mid, l1_a = _translate(model, t1, real, first)
    back, l1_b = _translate(model, t2, normalise(mid, mean, std), second)
    out.update(real=to_unit(real, mean, std), mid=mid, back=back,
               real_feat_a=model.embed(l1_a)["triplet_feats"][0], real_feat_b=model.embed(l1_b)["triplet_feats"][0])
    d_mid, d_back = (d_hazy, d_clear) if stage == 2 else (d_clear, d_hazy)
    out.update(d_mid=d_mid(mid), d_back=d_back(back))
    return out


def discriminator_pairs(out: Dict, stage: int) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
    """``{discriminator: (real images, generated images)}`` of the step, each of its own domain."""
    if stage == 1:
        return {"disc_clear": (out["clear"], out["gc"]), "disc_hazy": (out["foggy"], out["gf"])}
    if stage == 2:  # real clear R vs R″; hazy: the synthetic foggy images vs R′
        return {"disc_clear": (out["real"], out["back"]), "disc_hazy": (out["foggy"], out["mid"])}
    return {"disc_clear": (out["clear"], out["mid"]), "disc_hazy": (out["real"], out["back"])}


def discriminator_loss(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``(LSGAN(D(real), 1) + LSGAN(D(fake), 0)) / 2`` with the generated images detached."""
    return 0.5 * (lsgan(disc(real.detach()).float(), True) + lsgan(disc(fake.detach()).float(), False))


class RVSLLoss(nn.Module):
    """The generator objective of a stage: ``forward(outputs, pids) -> (total, parts, terms)``.

    ``terms`` are the unweighted tensors (tests back-propagate them one by one), ``parts`` floats
    for the log (the ReID parts prefixed ``clear_``/``hazy_``).
    """

    def __init__(self, cfg, num_classes: int, feat_dim: int):
        super().__init__()
        r = cfg.MODEL.RVSL
        self.stage = int(r.STAGE)
        self.weights = stage_weights(cfg, self.stage)
        self.dc_patch, self.top, self.erode = r.DC_PATCH, r.AIRLIGHT_TOP, r.AIRLIGHT_ERODE
        self.reid = build_loss(cfg, num_classes, feat_dim)

    def terms(self, out: Dict, pids: torch.Tensor) -> Tuple[Dict[str, torch.Tensor], Dict[str, float]]:
        parts: Dict[str, float] = {}
        t: Dict[str, torch.Tensor] = {}
        for path in ("clear", "hazy"):
            t[f"reid_{path}"], reid_parts = self.reid(out[f"reid_{path}"], {"pids": pids})
            parts.update({f"{path}_{k}": v for k, v in reid_parts.items()})
        t["trans"] = F.smooth_l1_loss(out["gc"], out["clear"]) + F.smooth_l1_loss(out["gf"], out["foggy"])
        t["feat"] = F.l1_loss(out["reid_clear"]["triplet_feats"][0], out["reid_hazy"]["triplet_feats"][0])
        if self.stage == 1:
            t["adv"] = 0.5 * (lsgan(out["d_gc"], True) + lsgan(out["d_gf"], True))
            return t, parts
        real, mid, back = out["real"], out["mid"], out["back"]
        t["real_feat"] = F.l1_loss(out["real_feat_a"], out["real_feat_b"])
        t["cycle"] = F.smooth_l1_loss(back, real)
        t["real_adv"] = 0.5 * (lsgan(out["d_mid"], True) + lsgan(out["d_back"], True))
        if self.stage == 2:  # mid: the hazy rendering of the real clear image
            t["midc"] = midc_loss(real, mid)
            t["cr"] = colinear_loss(real, mid, top=self.top, erode=self.erode)
        else:  # mid: the restoration of the real hazy image
            t["dc"] = dark_channel_loss(mid, self.dc_patch)
            t["tv"] = total_variation_loss(mid)
            t["cr"] = colinear_loss(mid, real, top=self.top, erode=self.erode)
        return t, parts

    def forward(self, outputs: Dict, pids: torch.Tensor):
        with torch.autocast(device_type=pids.device.type, enabled=False):
            terms, parts = self.terms(outputs, pids)
            total = sum(self.weights[k] * v for k, v in terms.items())
        parts.update({k: float(v.detach()) for k, v in terms.items() if not k.startswith("reid_")})
        return total, parts, terms
