"""Training data as streams: the main P×K stream plus the extra streams a model family declares.

``Trainer.build_train_records`` returns a :class:`TrainData`: the main stream's records (its
batches define the epoch), the number of classifier rows, and any extra :class:`Stream` (SJDL's
labelled real-fog images, an unlabelled real-haze set ...). The trainer gives each extra stream a
loader of its own and a :class:`StreamLoader` joins its next batch into every ``period``-th main
batch, so one step sees both (one forward, one backward).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Tuple

import numpy as np
import torch

from ..data.records import ImageRecord

__all__ = ["Stream", "StreamLoader", "TrainData", "nest_batch"]

Batch = Dict[str, Any]


def nest_batch(batch: Batch, name: str, extra: Batch) -> Batch:
    """The default join: the extra stream's batch under ``batch[name]``."""
    return {**batch, name: extra}


@dataclass(frozen=True)
class Stream:
    """An extra training stream: its next batch joins every ``period``-th main batch via ``join``.

    ``num_ids`` is the number of classifier rows its labels use (0 for an unlabelled stream); the
    streams' id blocks follow the main stream's in declaration order.
    """

    records: List[ImageRecord]
    period: int = 1
    num_ids: int = 0
    join: Callable[[Batch, str, Batch], Batch] = nest_batch

    def __post_init__(self):
        if self.period < 1:
            raise ValueError(f"a training stream joins every period-th main batch: period must be >= 1, "
                             f"got {self.period}")


@dataclass(frozen=True)
class TrainData:
    """What ``build_train_records`` returns: main records, the classifier size and the extra streams."""

    records: List[ImageRecord]
    num_classes: int
    streams: Dict[str, Stream] = field(default_factory=dict)

    @property
    def main_ids(self) -> int:
        """Classifier rows of the main stream (ids ``0..main_ids-1``)."""
        return self.num_classes - sum(s.num_ids for s in self.streams.values())


class StreamLoader:
    """The main loader whose every ``period``-th batch also carries the next batch of each extra stream.

    Extra stream ``i`` (1-based, declaration order) runs the epoch of the main sampler with its
    loader reseeded from ``(SOLVER.SEED, epoch, i)``, so a resumed run replays the same batches; it
    restarts that epoch's order when it runs out before the main stream does.
    """

    def __init__(self, main, main_sampler, streams: Dict[str, Stream], loaders: Dict[str, Tuple[Any, Any]],
                 seed: int):
        self.main, self.main_sampler = main, main_sampler
        self.streams, self.loaders = streams, loaders
        self.seed = int(seed)

    @property
    def generator(self) -> torch.Generator:
        return self.main.generator

    def __len__(self) -> int:
        return len(self.main)

    def _batches(self, index: int, name: str) -> Iterator[Batch]:
        loader, sampler = self.loaders[name]
        epoch = self.main_sampler.epoch
        sampler.set_epoch(epoch)
        while True:
            loader.generator.manual_seed(int(np.random.SeedSequence([self.seed, epoch, index]).generate_state(1)[0]))
            yield from loader

    def __iter__(self) -> Iterator[Batch]:
        extra = {name: self._batches(i + 1, name) for i, name in enumerate(self.streams)}
        for step, batch in enumerate(self.main):
            for name, stream in self.streams.items():
                if step % stream.period == 0:
                    batch = stream.join(batch, name, next(extra[name]))
            yield batch
