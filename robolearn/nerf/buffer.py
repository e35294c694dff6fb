"""A frame buffer with a bounded memory budget and an explicit policy for when it is full.

NerfBridge keeps a fixed 500-frame array and silently ignores frames past it.  Here:

1. keep every frame until the byte budget (``memory_budget_mb``) is used up;
2. then every new frame still enters (the newest view is the one the robot is looking at),
   and the slot it takes is the **most redundant** older frame: the one whose pose is
   closest to another kept frame (translation + ``rot_weight`` x rotation angle), never
   one of the ``protect_recent`` newest.  Frames that saw unique parts of the scene survive.

Sampling (which frames rays come from) is either ``uniform`` over the kept frames, or
``recency``: a mixture of uniform and an exponential over frame age, as in DISORF
(Li et al. 2024) -- new regions get trained at once, old ones are not forgotten.
The buffer is numpy only; :class:`StreamingDataManager` mirrors it into torch tensors.
"""

from __future__ import annotations

import numpy as np

from robolearn.nerf.frames import Frame


def frame_nbytes(width: int, height: int, with_depth: bool) -> int:
    return width * height * (3 + (4 if with_depth else 0)) + 16 * 4 + 64


def pose_distance(a: np.ndarray, b: np.ndarray, rot_weight: float) -> np.ndarray:
    """Distance between pose ``a`` (4, 4) and poses ``b`` (N, 4, 4): metres + w * radians."""
    dt = np.linalg.norm(b[:, :3, 3] - a[:3, 3], axis=-1)
    cos = (np.einsum("nij,ij->n", b[:, :3, :3], a[:3, :3]) - 1.0) / 2.0
    return dt + rot_weight * np.arccos(np.clip(cos, -1.0, 1.0))


class FrameBuffer:
    """Fixed number of slots sized from a memory budget; see the module docstring."""

    def __init__(self, width: int, height: int, memory_budget_mb: float, with_depth: bool = True,
                 protect_recent: int = 4, rot_weight: float = 0.3, max_frames: int = 0):
        self.width, self.height, self.with_depth = width, height, with_depth
        per = frame_nbytes(width, height, with_depth)
        cap = int(memory_budget_mb * 2**20 // per)
        if max_frames > 0:
            cap = min(cap, max_frames)
        if cap < 2:
            raise ValueError(f"memory_budget_mb={memory_budget_mb} holds {cap} frames of "
                             f"{width}x{height}; raise the budget")
        self.capacity = cap
        self.rgb = np.zeros((cap, height, width, 3), np.uint8)
        self.depth = np.zeros((cap, height, width), np.float32) if with_depth else None
        self.c2w = np.tile(np.eye(4), (cap, 1, 1))
        self.intr = np.zeros((cap, 4), np.float32)
        self.stamp = np.zeros(cap)
        self.arrival = np.full(cap, -1, np.int64)  # arrival counter; -1 = empty slot
        self.protect_recent, self.rot_weight = protect_recent, rot_weight
        self.n_seen = 0
        self.n_evicted = 0

    @property
    def nbytes(self) -> int:
        arrays = [self.rgb, self.c2w, self.intr, self.stamp, self.arrival]
        return sum(a.nbytes for a in arrays) + (self.depth.nbytes if self.with_depth else 0)

    @property
    def valid(self) -> np.ndarray:
        return self.arrival >= 0

    def __len__(self) -> int:
        return int(self.valid.sum())

    def add(self, frame: Frame) -> tuple[int, int | None]:
        """Store a validated frame; return ``(slot, evicted_arrival_or_None)``."""
        free = np.flatnonzero(~self.valid)
        evicted = None
        if len(free):
            slot = int(free[0])
        else:
            slot = self._eviction_slot()
            evicted = int(self.arrival[slot])
            self.n_evicted += 1
        self.rgb[slot] = frame.rgb
        if self.with_depth:
            self.depth[slot] = frame.depth if frame.depth is not None else 0.0
        self.c2w[slot] = frame.c2w
        self.intr[slot] = frame.intrinsics.as_array()
        self.stamp[slot] = frame.timestamp
        self.arrival[slot] = self.n_seen
        self.n_seen += 1
        return slot, evicted

    def _eviction_slot(self) -> int:
        """The most redundant frame outside the ``protect_recent`` newest."""
        order = np.argsort(-self.arrival)  # newest first
        candidates = order[self.protect_recent:]
        best, best_d = int(candidates[-1]), np.inf
        for i in candidates:
            d = pose_distance(self.c2w[i], self.c2w, self.rot_weight)
            d[i] = np.inf
            if d.min() < best_d:
                best, best_d = int(i), float(d.min())
        return best

    def sampling_weights(self, mode: str, recent_fraction: float = 0.5,
                         recency_tau: float = 8.0) -> np.ndarray:
        """Per-slot probabilities (sum 1, zero for empty slots).

        ``recency``: ``(1 - f) * uniform + f * softmax(-age / tau)`` with age in frames
        since arrival among the kept ones; ``uniform``: equal over kept frames.
        """
        valid = self.valid
        w = valid.astype(np.float64)
        w /= max(w.sum(), 1.0)
        if mode == "uniform" or not valid.any():
            return w
        if mode != "recency":
            raise ValueError(f"unknown sampling mode {mode!r}; valid: uniform, recency")
        rank = np.zeros(self.capacity)
        idx = np.flatnonzero(valid)
        rank[idx] = np.argsort(np.argsort(-self.arrival[idx]))  # 0 = newest
        r = np.where(valid, np.exp(-rank / max(recency_tau, 1e-6)), 0.0)
        r /= r.sum()
        return (1.0 - recent_fraction) * w + recent_fraction * r
