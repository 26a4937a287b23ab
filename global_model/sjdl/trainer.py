"""SJDL training: the encoder learns ReID and defogging at once (``MODEL.META_ARCH sjdl``).

Data. ``DATASETS.TRAIN`` records with ``attrs["domain"] == "real"`` (e.g. from
``fvrid(split=both)``) form the real-fog stream; all others form the main stream, whose records
with a clear twin (``clear_path``) drive the restoration loss. The dataset augments a foggy image
and its clear twin with the same seed, so crop, flip and erasing keep them pixel-aligned. Each
stream has its own P×K sampler; every ``SJDL.REAL_PERIOD``-th main batch carries a real-fog batch
along (one forward over both, so DDP sees one forward per backward). Main ids are relabelled
``0..S-1`` and real ids ``S..C-1``: the two row blocks of the model's classifier.

Model. The trainer owns a :class:`~global_model.modeling.sjdl.DefogDecoder` beside the encoder;
they train as one :class:`SJDLNet` (autocast, DDP) with one optimizer. Checkpoints store the
decoder under ``"decoder"`` next to the encoder's ``"model"``, so ``extract`` loads an SJDL
checkpoint like any global model and ``defog`` finds the decoder.

Evaluation. Besides mAP on ``DATASETS.TEST``, every evaluation scores PSNR/SSIM of the foggy
input, the decoded and the enhanced image against the clear twin on ``SJDL.VAL_PAIRS`` and writes
``OUTPUT_DIR/defog_vis/epoch_XXX_<name>.png`` panels (foggy | decoded | enhanced | clear).
"""
from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.datasets import DatasetError
from ..data.records import ImageRecord
from ..modeling.sjdl import SJDL, build_defog_decoder, to_unit_range, unit_to_uint8
from ..modeling.sjdl_losses import SJDLLoss
from .amp import autocast, resolve_amp
from .checkpoint import CheckpointError, load_model_weights
from .solver import param_groups
from .trainer import Trainer, register_trainer

__all__ = ["MixedLoader", "SJDLNet", "SJDLTrainer", "psnr", "ssim"]

logger = logging.getLogger("global_model.train")


def psnr(restored: torch.Tensor, clear: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of B×3×H×W images in [0, 1]."""
    mse = (restored.float() - clear.float()).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse.clamp(min=1e-10))


def ssim(restored: torch.Tensor, clear: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004: 11×11 Gaussian window, σ 1.5) of B×3×H×W images in [0, 1],
    averaged over channels and the valid (unpadded) window positions."""
    x, y = restored.float(), clear.float()
    window = min(window, x.shape[-2], x.shape[-1])
    coords = torch.arange(window, dtype=torch.float32, device=x.device) - (window - 1) / 2
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(x.shape[1], 1, window, window).contiguous()

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=x.shape[1])

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)


class SJDLNet(nn.Module):
    """Encoder + decoder as the one module the optimizer trains: the model's train outputs plus the
    ``decoded`` and ``enhanced`` images of every input row."""

    def __init__(self, model: SJDL, decoder: nn.Module):
        super().__init__()
        self.model, self.decoder = model, decoder

    def forward(self, images: torch.Tensor) -> Dict[str, Any]:
        out = self.model(images)
        stem, layer1 = out.pop("defog_maps")
        out["decoded"], out["enhanced"] = self.decoder(stem, layer1, images)
        return out


class MixedLoader:
    """The main P×K loader whose every ``period``-th batch also carries the next real-fog batch.

    Real-fog rows are appended to ``images`` and labelled by ``real_pids``. The real sampler runs
    the epoch of the main sampler (so a resumed run replays the same real batches) and restarts
    that epoch's order if the real set is exhausted first.
    """

    def __init__(self, main, main_sampler, real, real_sampler, period: int, seed: int):
        self.main, self.main_sampler = main, main_sampler
        self.real, self.real_sampler = real, real_sampler
        self.period, self.seed = int(period), int(seed)

    @property
    def generator(self) -> torch.Generator:
        return self.main.generator

    def __len__(self) -> int:
        return len(self.main)

    def _real_batches(self) -> Iterator[Dict[str, Any]]:
        epoch = self.main_sampler.epoch
        self.real_sampler.set_epoch(epoch)
        while True:
            self.real.generator.manual_seed(int(np.random.SeedSequence([self.seed, epoch, 1]).generate_state(1)[0]))
            yield from self.real

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        real = self._real_batches()
        for i, batch in enumerate(self.main):
            if i % self.period == 0:
                extra = next(real)
                batch = {**batch, "images": torch.cat([batch["images"], extra["images"]]),
                         "real_pids": extra["pids"], "real_paths": extra["paths"]}
            yield batch


@register_trainer("sjdl")
class SJDLTrainer(Trainer):
    """The base trainer with SJDL's two data streams, decoder, objective and restoration evaluation."""

    def __init__(self, cfg, resume: Optional[str] = None, progress: bool = True):
        self._val_pairs: Optional[List[ImageRecord]] = None
        super().__init__(cfg, resume=resume, progress=progress)

    # ------------------------------------------------------------------ data
    def build_train_records(self):
        records, _ = super().build_train_records()
        main = [r for r in records if r.attrs.get("domain") != "real"]
        real = [r for r in records if r.attrs.get("domain") == "real"]
        if not any(r.clear_path for r in main):
            raise DatasetError(f"MODEL.META_ARCH sjdl needs clear/foggy training pairs, but no record of DATASETS.TRAIN "
                               f"{list(self.cfg.DATASETS.TRAIN)} has a clear twin; use e.g. 'fvrid(split=both)=DIR'")
        if real and self.cfg.SJDL.REAL_PERIOD <= 0:
            logger.info("SJDL.REAL_PERIOD %d: the %d real-fog training images are not used",
                        self.cfg.SJDL.REAL_PERIOD, len(real))
            real = []
        main_ids = {pid: i for i, pid in enumerate(sorted({r.pid for r in main}))}
        real_ids = {pid: len(main_ids) + i for i, pid in enumerate(sorted({r.pid for r in real}))}
        self.num_syn_ids = len(main_ids)
        self.real_records = [replace(r, pid=real_ids[r.pid]) for r in real]
        logger.info("SJDL: %d main images (%d ids, %d with a clear twin), %d real-fog images (%d ids)", len(main),
                    len(main_ids), sum(bool(r.clear_path) for r in main), len(real), len(real_ids))
        return [replace(r, pid=main_ids[r.pid]) for r in main], len(main_ids) + len(real_ids)

    def build_train_loader(self):
        from ..data.dataset import build_train_loader

        main, sampler = super().build_train_loader()
        if not self.real_records:
            return main, sampler
        try:
            real, real_sampler = build_train_loader(self.cfg, self.real_records, self.rank, self.world_size)
        except ValueError as exc:
            raise DatasetError(f"SJDL real-fog stream: {exc}") from None
        real.generator = torch.Generator()
        return MixedLoader(main, sampler, real, real_sampler, self.cfg.SJDL.REAL_PERIOD, self.cfg.SOLVER.SEED), sampler

    # ------------------------------------------------------------------ model, loss, optimizer
    def build_model(self) -> nn.Module:
        model = super().build_model()
        if not isinstance(model, SJDL):
            raise ValueError(f"the SJDL trainer needs MODEL.META_ARCH sjdl, got a {type(model).__name__}")
        decoder = build_defog_decoder(self.cfg, model).to(self.device)
        self.decoder = decoder.to(memory_format=torch.channels_last) if self.channels_last else decoder
        return model

    def build_loss(self) -> nn.Module:
        num_real = self.num_classes - self.num_syn_ids
        return SJDLLoss(self.cfg, self.num_syn_ids, num_real, self.model.feat_dim).to(self.device)

    def build_optimizer(self):
        optimizer, center = super().build_optimizer()
        for group in param_groups(self.decoder, self.cfg, backbone_prefixes=()):
            optimizer.add_param_group(group)
        return optimizer, center

    def wrap_distributed(self, model: nn.Module) -> nn.Module:
        return super().wrap_distributed(SJDLNet(model, self.decoder))

    # ------------------------------------------------------------------ checkpoints
    def weights_state(self) -> Dict[str, Any]:
        return {**super().weights_state(), "decoder": self.decoder.state_dict()}

    def load_weights(self, ckpt: Dict[str, Any], source: str) -> None:
        super().load_weights(ckpt, source)
        if "decoder" not in ckpt:
            raise CheckpointError(f"{source}: no 'decoder' entry; it is not an SJDL training checkpoint")
        load_model_weights(self.decoder, ckpt["decoder"], source=f"{source} (decoder)")

    # ------------------------------------------------------------------ evaluation
    def validation_pairs(self) -> List[ImageRecord]:
        """Query + gallery records of ``SJDL.VAL_PAIRS`` that have a clear twin, at most ``SJDL.VAL_MAX``
        of them, evenly spaced (empty when ``SJDL.VAL_PAIRS`` is unset)."""
        if self._val_pairs is None:
            from ..data.dataset import load_dataset_spec

            spec = self.cfg.SJDL.VAL_PAIRS
            records: List[ImageRecord] = []
            if spec:
                splits = load_dataset_spec(spec, self.cfg)
                records = [r for r in splits.query + splits.gallery if r.clear_path]
                if not records:
                    raise DatasetError(f"SJDL.VAL_PAIRS {spec!r}: no query/gallery image has a clear twin")
                limit = max(1, self.cfg.SJDL.VAL_MAX)
                if len(records) > limit:
                    records = [records[i] for i in np.linspace(0, len(records) - 1, limit).round().astype(int)]
            self._val_pairs = records
        return self._val_pairs

    def restoration_metrics(self, tag: str = "") -> Optional[Dict[str, float]]:
        """Mean PSNR/SSIM of the foggy input, decoded and enhanced images vs the clear twins of
        :meth:`validation_pairs`; writes ``SJDL.VIS_NUM`` panels named after ``tag`` when ``SJDL.VIS``."""
        from ..data.dataset import build_test_loader

        records = self.validation_pairs()
        if not records:
            return None
        cfg = self.cfg
        mean, std = cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD
        dtype = resolve_amp(cfg.TEST.AMP, self.device)
        scores: Dict[str, List[torch.Tensor]] = {f"{m}_{k}": [] for m in ("psnr", "ssim")
                                                 for k in ("foggy", "decoded", "enhanced")}
        panels: List[np.ndarray] = []
        modes = (self.model.training, self.decoder.training)
        self.model.eval()
        self.decoder.eval()
        try:
            with torch.inference_mode():
                for batch in build_test_loader(cfg, records):
                    images = batch["images"].to(self.device)
                    with autocast(self.device, dtype):
                        decoded, enhanced = self.decoder(*self.model.defog_maps(images), images)
                    clear = to_unit_range(batch["clear"].to(self.device), mean, std)
                    shown = {"foggy": to_unit_range(images, mean, std), "decoded": decoded.float(),
                             "enhanced": enhanced.float()}
                    for kind, img in shown.items():
                        scores[f"psnr_{kind}"].append(psnr(img, clear).cpu())
                        scores[f"ssim_{kind}"].append(ssim(img, clear).cpu())
                    wanted = cfg.SJDL.VIS_NUM - len(panels) if cfg.SJDL.VIS else 0
                    for i in range(min(len(images), wanted)):
                        row = [shown["foggy"][i], shown["decoded"][i], shown["enhanced"][i], clear[i]]
                        panels.append(np.concatenate([unit_to_uint8(t) for t in row], axis=1))
        finally:
            self.model.train(modes[0])
            self.decoder.train(modes[1])
        if panels:
            self.write_panels(panels, records, tag)
        return {k: float(torch.cat(v).mean()) for k, v in scores.items()}

    def write_panels(self, panels: List[np.ndarray], records: List[ImageRecord], tag: str) -> None:
        import cv2

        from post_processing.fileio import atomic_write

        folder = os.path.join(self.cfg.OUTPUT_DIR, "defog_vis")
        os.makedirs(folder, exist_ok=True)
        for panel, rec in zip(panels, records):
            ok, buf = cv2.imencode(".png", cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
            if not ok:
                raise OSError(f"cannot encode the defogging panel of {rec.path} as PNG")
            with atomic_write(os.path.join(folder, f"{tag}_{os.path.splitext(rec.name)[0]}.png"), "wb") as f:
                f.write(buf.tobytes())

    def validate(self) -> Optional[Dict[str, float]]:
        metrics = super().validate()
        rest = self.restoration_metrics(f"epoch_{self.epoch:03d}")
        if rest:
            self.last_metrics.update(rest)
            self.log_scalars({f"val/{k}": v for k, v in rest.items()})
            logger.info("restoration epoch %d: %s", self.epoch, format_restoration(rest, len(self.validation_pairs())))
        return metrics

    def train(self) -> Dict[str, float]:
        metrics = super().train()
        if self.is_main and "psnr_decoded" in metrics:
            logger.info("SJDL final %s", format_restoration(metrics, len(self.validation_pairs())))
        return metrics


def format_restoration(m: Dict[str, float], pairs: int) -> str:
    """One line: PSNR/SSIM of the foggy input → decoded / enhanced images."""
    return (f"on {pairs} clear/foggy pairs: PSNR foggy {m['psnr_foggy']:.2f} -> decoded {m['psnr_decoded']:.2f} / "
            f"enhanced {m['psnr_enhanced']:.2f} dB, SSIM foggy {m['ssim_foggy']:.3f} -> decoded "
            f"{m['ssim_decoded']:.3f} / enhanced {m['ssim_enhanced']:.3f}")

