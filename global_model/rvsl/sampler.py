"""The sampler of RVSL's unlabelled real streams: shuffled batches that ignore identity labels.

The published code batches its real images with a P×K identity sampler built from the real file
names' ids, so the "unsupervised" stages still use real labels. Here every pass is a fresh
permutation of all images; pass ``n`` of epoch ``e`` draws its order and the per-sample
augmentation seeds from ``(seed, e, n)``. The trainer's stream loader iterates the loader again
whenever a pass runs out, so each pass re-reads and re-augments the images (the published
``itertools.cycle`` replays the first pass's tensors from memory), and a resumed run replays the
same batches.
"""
from __future__ import annotations

from typing import Iterator, Tuple

import numpy as np

from post_processing.errors import ReidUsageError

__all__ = ["ShuffleSampler"]


class ShuffleSampler:
    """Yields ``(index, sample_seed)`` for ``DataLoader(batch_size=batch_size, drop_last=True)``."""

    def __init__(self, size: int, batch_size: int, seed: int = 0, what: str = "the real stream"):
        if size < batch_size:
            raise ReidUsageError(f"{what} has {size} images, fewer than one batch of {batch_size} "
                                 f"(MODEL.RVSL.REAL_BATCH)")
        self.size, self.batch_size, self.seed = int(size), int(batch_size), int(seed)
        self.epoch, self.passes = 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.passes = int(epoch), 0

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch, self.passes])
        self.passes += 1
        order = rng.permutation(self.size)[: self.size // self.batch_size * self.batch_size]
        seeds = rng.integers(0, 2 ** 63 - 1, size=len(order))
        for idx, s in zip(order, seeds):
            yield int(idx), int(s)

    def __len__(self) -> int:
        return self.size // self.batch_size * self.batch_size

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])
