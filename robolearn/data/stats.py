"""Per-key normalisation statistics, computed once and stored in the store's attributes.

For every numeric low-dim key: ``min``, ``max``, ``mean``, ``std``, ``q01``, ``q99`` per
feature dimension.  For every camera: per-channel ``mean``/``std``/``min``/``max`` in [0, 1]
units from a seeded subsample of frames.  The stats record the number of steps they
cover; :func:`get_stats` recomputes when episodes were appended since.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robolearn.data.store import TrajectoryStore

STATS_ATTR = "stats"
MAX_IMAGE_FRAMES = 512


def _lowdim_stats(x: np.ndarray) -> dict[str, list[float]]:
    x = x.reshape(len(x), -1).astype(np.float64)
    q01, q99 = np.quantile(x, [0.01, 0.99], axis=0)
    return {"min": x.min(0).tolist(), "max": x.max(0).tolist(), "mean": x.mean(0).tolist(),
            "std": x.std(0).tolist(), "q01": q01.tolist(), "q99": q99.tolist()}


def _image_stats(store: TrajectoryStore, key: str, seed: int) -> dict[str, list[float]]:
    n = store.n_steps
    cs = store.chunk_steps(key)
    rng = np.random.default_rng(seed)
    # sample whole chunks (cheap to read) until enough frames are seen
    chunks = rng.permutation((n + cs - 1) // cs)
    frames, seen = [], 0
    for c in chunks:
        block = store.read(key, c * cs, min((c + 1) * cs, n))
        frames.append(block)
        seen += len(block)
        if seen >= MAX_IMAGE_FRAMES:
            break
    px = np.concatenate(frames).reshape(-1, 3).astype(np.float64) / 255.0
    return {"min": px.min(0).tolist(), "max": px.max(0).tolist(), "mean": px.mean(0).tolist(),
            "std": px.std(0).tolist()}


def compute_stats(store: TrajectoryStore, seed: int = 0) -> dict[str, Any]:
    """Statistics of every numeric key over all committed steps."""
    schema = store.schema
    if schema is None or store.n_steps == 0:
        raise ValueError(f"{store.url} is empty: nothing to compute statistics of")
    out: dict[str, Any] = {"n_steps": store.n_steps, "n_episodes": store.n_episodes, "keys": {}}
    for key in schema.lowdim_keys:
        out["keys"][key] = _lowdim_stats(store.read(key))
    for key in schema.image_keys:
        out["keys"][key] = _image_stats(store, key, seed)
    return out


def get_stats(store: TrajectoryStore, recompute: bool = False, save: bool = True) -> dict[str, Any]:
    """Stored stats when they are current, else computed (and saved if the store is writable).

    Returns ``{key: {stat: [per-dim floats]}}``.
    """
    cached = store.attrs.get(STATS_ATTR)
    if not recompute and cached and cached.get("n_steps") == store.n_steps:
        return cached["keys"]
    stats = compute_stats(store)
    if save and store.mode == "a":
        store.set_attr(STATS_ATTR, stats)
    return stats["keys"]
