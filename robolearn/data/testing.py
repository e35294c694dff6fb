"""Synthetic episodes and stores for tests, benchmarks and examples (no sim needed).

Episode content is a deterministic function of its seed, so a test can check any step
of any episode against what was written.  Images carry smooth gradients, a moving
square and sparse noise: they compress like rendered sim frames, not like white noise.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from robolearn import keys as K


def synthetic_episode(length: int, seed: int, cameras: Sequence[str] = ("front", "wrist"),
                      image_size: int = 32, state_dim: int = 9, action_dim: int = 8,
                      ) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    ep: dict[str, np.ndarray] = {}
    yy, xx = np.mgrid[0:image_size, 0:image_size]
    for ci, cam in enumerate(cameras):
        base = np.stack([xx * 255 // image_size, yy * 255 // image_size,
                         np.full_like(xx, (seed * 37 + ci * 91) % 256)], axis=-1).astype(np.int16)
        frames = np.repeat(base[None], length, axis=0)
        side = max(2, image_size // 6)
        for i in range(length):  # a block that moves with time
            x0 = (i * 2 + seed) % (image_size - side)
            frames[i, side:2 * side, x0:x0 + side] = (200, 30, 30)
        speckle = rng.random(frames.shape[:3]) < 0.03  # sensor noise on a few pixels
        frames[speckle] += rng.integers(-8, 9, size=(int(speckle.sum()), 3), dtype=np.int16)
        ep[K.image_key(cam)] = np.clip(frames, 0, 255).astype(np.uint8)
    ep[K.OBS_STATE] = (np.sin(t[:, None] * 0.1 + np.arange(state_dim)) + seed).astype(np.float32)
    ep[K.ACTION] = (np.cos(t[:, None] * 0.1 + np.arange(action_dim)) + seed).astype(np.float32)
    ep[K.REWARD] = (t == length - 1).astype(np.float32)
    ep[K.DONE] = t == length - 1
    ep[K.LANGUAGE] = [f"task {seed % 3}"] * length
    ep[K.SKILL] = ["reach" if i < length // 2 else "pick" for i in range(length)]
    return ep


def synthetic_meta(seed: int, **overrides) -> dict:
    meta = {K.META_TASK: f"task{seed % 3}", K.META_INSTRUCTION: f"task {seed % 3}",
            K.META_SUCCESS: seed % 4 != 0, K.META_ROBOT: "panda", K.META_FPS: 10.0,
            K.META_ACTION_SPACE: "joint_pos", K.META_SOURCE: "synthetic", K.META_SEED: seed}
    meta.update(overrides)
    return meta


def make_synthetic_store(url, lengths: Sequence[int] = (23, 40, 7, 31), seed0: int = 0,
                         storage_options=None, **episode_kwargs):
    """A store with one synthetic episode per entry of ``lengths`` (unequal on purpose)."""
    from robolearn.data.store import TrajectoryStore

    store = TrajectoryStore.create(url, storage_options=storage_options,
                                   image_chunk_steps=episode_kwargs.pop("image_chunk_steps", 16))
    for i, n in enumerate(lengths):
        store.append_episode(synthetic_episode(n, seed0 + i, **episode_kwargs),
                             synthetic_meta(seed0 + i))
    return store
