"""torchrun / DDP helpers: process-group setup (gloo on CPU, NCCL on GPU) and a resumable sampler."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group torchrun describes in the environment (no-op for 1 process)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(),
                        int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    use_cuda = torch.cuda.is_available() and not str(device).startswith("cpu")
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


class ResumableSampler(torch.utils.data.Sampler):
    """Shuffled indices for one rank, reproducible per (seed, epoch), startable mid-epoch.

    Each epoch is a fresh permutation of the whole dataset; rank r takes every
    world_size-th index starting at r, so the first global batch of W ranks with
    batch b each is exactly the first W*b indices of the permutation - the batch one
    process with batch W*b would see.  ``start`` skips already-consumed samples of this
    rank on resume without loading them.
    """

    def __init__(self, n: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True):
        self.n, self.seed, self.rank, self.world = n, seed, rank, world_size
        self.shuffle = shuffle
        self.epoch, self.start = 0, 0
        self.per_rank = n // world_size  # equal lengths on every rank (drop the remainder)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        return self.per_rank - self.start

    def __iter__(self):
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            perm = torch.randperm(self.n, generator=g)
        else:
            perm = torch.arange(self.n)
        mine = perm[self.rank::self.world][: self.per_rank]
        return iter(mine[self.start:].tolist())
