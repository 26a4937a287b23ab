"""Benchmark: images/s of the extractor's inference path vs a naive fp32 PyTorch loop, same model.

Model: the toolkit's global model (``MODEL.META_ARCH baseline``) on a randomly initialised
ResNet-50, 256×256 input, batch 32, eval mode. Both sides get the same preprocessed batches.

- naive: ``with torch.no_grad(): model(x)`` in fp32, NCHW, no autocast;
- ours:  what ``python -m global_model extract`` runs — ``prepare_for_inference`` (BatchNorm
  folded into the convolutions with torch.fx, channels_last weights) then ``infer_batch``
  (inference mode, channels_last input, bf16 autocast on a CPU with native bf16, fp16 AMP on
  CUDA, per ``TEST.AMP auto``).

Compared like for like: without flip (one forward per batch), and with flip TTA (naive: two
forwards, original and mirrored; ours: one forward on the doubled batch). Rounds interleave the
two sides so background load hits both alike; the figure is the median over rounds after a
warm-up. Target: ours ≥ 3× naive on this CPU.

    python scripts/bench/extract_throughput.py [--rounds 5] [--batch 32] [--size 256] [--flip both|on|off]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

TARGET = 3.0


def build(backbone: str, size: int):
    from global_model.config import load_config
    from global_model.modeling import build_model

    cfg = load_config(None, ["MODEL.BACKBONE", backbone, "MODEL.PRETRAINED", "False", "MODEL.LAST_STRIDE", "2",
                             "INPUT.SIZE_TEST", f"[{size},{size}]"])
    torch.manual_seed(0)
    return build_model(cfg, num_classes=100).eval(), cfg


def naive(model, x: torch.Tensor, flip: bool) -> torch.Tensor:
    with torch.no_grad():
        f = model(x)
        if flip:
            f = (f + model(x.flip(3))) * 0.5
        return torch.nn.functional.normalize(f, dim=1)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backbone", default="resnet50")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--flip", choices=("both", "on", "off"), default="both")
    args = ap.parse_args()

    from global_model.engine.amp import resolve_amp, resolve_device
    from global_model.engine.extractor import infer_batch, prepare_for_inference

    device = resolve_device("auto")
    model, cfg = build(args.backbone, args.size)
    model.to(device)
    dtype = resolve_amp(cfg.TEST.AMP, device)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(f"{args.backbone} (random init) {args.size}x{args.size}, batch {args.batch}, device {device}, "
          f"threads {torch.get_num_threads()}, ours: BN folded + autocast {dtype or 'off'} + channels_last")
    ours_model = prepare_for_inference(model)  # a folded copy; ``model`` stays the plain fp32 one
    results = []
    for flip in {"both": (False, True), "on": (True,), "off": (False,)}[args.flip]:
        naive_t, ours_t = [], []
        for r in range(args.rounds + 1):  # round 0 is the warm-up
            t_n = timed(lambda: (naive(model, x, flip), sync()))
            t_o = timed(lambda: (infer_batch(ours_model, x, flip, dtype, True, True), sync()))
            if r:
                naive_t.append(t_n)
                ours_t.append(t_o)
        n_ips = args.batch / statistics.median(naive_t)
        o_ips = args.batch / statistics.median(ours_t)
        results.append((flip, n_ips, o_ips))
        print(f"flip {'on ' if flip else 'off'}  naive fp32 {n_ips:7.2f} img/s   ours {o_ips:7.2f} img/s   "
              f"speed-up {o_ips / n_ips:4.2f}x  (median of {args.rounds} rounds)", flush=True)
    worst = min(o / n for _, n, o in results)
    print(f"{'PASS' if worst >= TARGET else 'BELOW TARGET'}: lowest speed-up {worst:.2f}x (target {TARGET:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
