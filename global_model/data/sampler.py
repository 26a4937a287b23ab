"""P×K identity sampler: every batch holds P identities with K images each (for batch-hard triplet).

The order of an epoch is a pure function of ``(seed, epoch)``: all DDP ranks build the same global
batches of ``P × world_size`` identities and each rank keeps its own P identities, so ranks see
disjoint identities and a resumed run replays exactly the epochs an uninterrupted one would.
Each yielded item is ``(dataset_index, sample_seed)``; the dataset seeds that sample's
augmentation from it.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np

from post_processing.errors import ReidUsageError

__all__ = ["PKSampler", "SamplerError"]


class SamplerError(ReidUsageError, ValueError):
    """A P×K batch that the config's batch shape and the training set cannot give."""


class PKSampler:
    """Yields ``(index, sample_seed)`` for this rank; use with ``DataLoader(batch_size=P*K)``.

    Identities with fewer than K images are sampled with replacement up to K; each identity's
    images are cut into groups of K (a shorter last group is dropped), and batches draw P random
    identities that still have a group left, as in reid-strong-baseline's identity sampler.
    ``iters_per_epoch > 0`` fixes the number of batches (repeating passes when needed).
    """

    def __init__(self, pids: Sequence[int], batch_size: int, num_instances: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1, iters_per_epoch: int = 0):
        if num_instances < 1 or batch_size % num_instances:
            raise SamplerError(f"SOLVER.IMS_PER_BATCH ({batch_size}) must be a multiple of "
                               f"DATALOADER.NUM_INSTANCE ({num_instances})")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.batch_size, self.k = int(batch_size), int(num_instances)
        self.p = self.batch_size // self.k
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.iters_per_epoch = int(iters_per_epoch)
        self.epoch = 0
        self._cache = None
        by_pid: Dict[int, List[int]] = defaultdict(list)
        for i, pid in enumerate(pids):
            by_pid[int(pid)].append(i)
        self.by_pid = dict(sorted(by_pid.items()))
        if len(self.by_pid) < self.p * self.world_size:
            raise SamplerError(f"the P×K sampler needs at least {self.p * self.world_size} identities "
                               f"(IMS_PER_BATCH {batch_size} / NUM_INSTANCE {num_instances} × {world_size} "
                               f"process(es)); the training set has {len(self.by_pid)}")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _one_pass(self, rng: np.random.Generator) -> List[np.ndarray]:
        groups: Dict[int, List[np.ndarray]] = {}
        for pid, idxs in self.by_pid.items():
            idxs = np.asarray(idxs)
            idxs = rng.choice(idxs, self.k, replace=True) if len(idxs) < self.k else rng.permutation(idxs)
            n = len(idxs) // self.k
            groups[pid] = [idxs[j * self.k:(j + 1) * self.k] for j in range(n)]
        p_global = self.p * self.world_size
        batches = []
        while True:
            avail = [pid for pid, g in groups.items() if g]
            if len(avail) < p_global:
                return batches
            chosen = rng.choice(np.asarray(avail), p_global, replace=False)
            batches.append(np.concatenate([groups[int(pid)].pop() for pid in chosen]))

    def _draw(self, epoch: int) -> Tuple[List[np.ndarray], np.random.Generator]:
        """The global batches of ``epoch`` and the generator that drew them (it draws the seeds next)."""
        rng = np.random.default_rng([self.seed, epoch])
        batches = self._one_pass(rng)
        while self.iters_per_epoch and len(batches) < self.iters_per_epoch:
            batches += self._one_pass(rng)
        if self.iters_per_epoch:
            batches = batches[:self.iters_per_epoch]
        return batches, rng

    def batches_in_epoch(self, epoch: int) -> int:
        """The number of batches (iterations per rank) of ``epoch``: on a small set it varies between
        epochs, since how many P-identity batches a pass gives depends on the draw."""
        if self.iters_per_epoch:
            return self.iters_per_epoch
        if self._cache is not None and self._cache[0] == epoch:
            return len(self._cache[1][0])
        return len(self._draw(epoch)[0])

    def global_batches(self, epoch: int) -> Tuple[List[np.ndarray], np.ndarray]:
        """All ranks' batches of ``epoch`` and one augmentation seed per sample (batches × P·K·world)."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        batches, rng = self._draw(epoch)
        seeds = rng.integers(0, 2 ** 63 - 1, size=(len(batches), self.batch_size * self.world_size))
        self._cache = (epoch, (batches, seeds))
        return batches, seeds

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        batches, seeds = self.global_batches(self.epoch)
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        for batch, bseeds in zip(batches, seeds):
            for idx, s in zip(batch[lo:hi], bseeds[lo:hi]):
                yield int(idx), int(s)

    def __len__(self) -> int:
        if self.iters_per_epoch:
            return self.iters_per_epoch * self.batch_size
        return len(self.global_batches(self.epoch)[0]) * self.batch_size

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])
