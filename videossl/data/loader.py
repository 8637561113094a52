"""Resumable, deterministic data order for training: which samples each process sees, in which order.

The sampler yields ``(index, epoch)`` keys; the dataset derives every random draw of a sample (clip times,
crops, colour jitter) from ``(seed, epoch, index)``, so the data of step k is the same whether or not the run
was killed and resumed, and whatever the number of dataloader workers.

The loader never touches the global torch RNG: creating a DataLoader iterator draws the workers' base seed from
``loader.generator`` (the global RNG when that is None), once per epoch without persistent workers or with
``num_workers=0``, once per process with persistent ones. An uninterrupted run and a resumed one create their
iterators at different steps, so with the global RNG every random draw a method makes in ``training_step``
(jigsaw's permutations, MAE's masks, ...) would shift after a resume. Here the loader has its own generator,
re-seeded from ``(seed, rank, epoch)`` whenever the sampler moves to an epoch, so the workers' torch / numpy /
Python seeds are a function of ``(seed, rank, epoch)`` too (for persistent workers: of the epoch they started
in). What a sample contains never depends on them (the dataset seeds every draw itself).
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import UserError


class ResumableDistributedSampler(Sampler):
    """Shuffled per epoch from ``(seed, epoch)``, sharded across ``world_size`` ranks, drop-last batches, and able
    to start mid-epoch at batch ``start_batch`` (the position stored in a checkpoint).

    Yields lists of ``(index, epoch)`` keys (it is a *batch* sampler). ``generator`` is the DataLoader's own RNG
    (workers' base seed), re-seeded from ``(seed, rank, epoch)`` by ``set_epoch``.
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True):
        if num_samples < batch_size * world_size:
            raise UserError(f"the training set has {num_samples} samples, fewer than one global batch (train.batch_size="
                            f"{batch_size} x {world_size} processes): lower train.batch_size or use more videos")
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        self.epoch, self.start_batch = 0, 0
        self.generator = torch.Generator()
        self.set_epoch(0)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch
        self.generator.manual_seed(loader_seed(self.seed, self.rank, epoch))

    def __len__(self) -> int:
        """Batches per epoch for one process (from the start of the epoch)."""
        return self.num_samples // (self.batch_size * self.world_size)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_samples)
        else:
            order = np.arange(self.num_samples)
        global_batch = self.batch_size * self.world_size
        for b in range(self.start_batch, len(self)):
            chunk = order[b * global_batch:(b + 1) * global_batch]
            mine = chunk[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
            yield [(int(i), self.epoch) for i in mine]


def loader_seed(seed: int, rank: int, epoch: int) -> int:
    """The seed of the loader's generator in ``epoch`` on ``rank`` (a 63-bit int; 0x5EED tags this use)."""
    return int(np.random.SeedSequence([seed, rank, epoch, 0x5EED]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def build_train_loader(dataset: Dataset, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1,
                       num_workers: int = 2, prefetch_factor: int = 4, persistent_workers: bool = True,
                       pin_memory: bool = False) -> tuple[DataLoader, ResumableDistributedSampler]:
    """DataLoader with the resumable batch sampler and its own generator (``ResumableDistributedSampler.generator``,
    so iterating the loader leaves the global torch RNG alone). The dataset seeds every random draw of a sample
    (clip times and torchvision's augmentation RNG) from ``(seed, epoch, index)`` itself (``VideoDataset``)."""
    sampler = ResumableDistributedSampler(len(dataset), batch_size, seed, rank, world_size)  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs = {"prefetch_factor": prefetch_factor, "persistent_workers": persistent_workers}
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                        pin_memory=pin_memory, generator=sampler.generator, **kwargs)
    return loader, sampler
