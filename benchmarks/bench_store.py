"""Trajectory store benchmark: window sampling vs uncompressed memmaps, chunk cache vs naive
per-window zarr reads, and append throughput - all measured in this one process run.

    python benchmarks/bench_store.py [--episodes 40 --steps 100 --image-size 96]

Frames come from the MuJoCo sim when robolearn.envs can render (realistic compression),
else from the synthetic episode generator (say which in the output).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from robolearn import keys as K
from robolearn.data.dataset import WindowDataset, make_dataloader
from robolearn.data.sampler import WindowIndex
from robolearn.data.store import TrajectoryStore
from robolearn.data.testing import synthetic_episode, synthetic_meta

CAMS = ("front", "wrist")


def make_episodes(n_eps: int, steps: int, size: int):
    return [synthetic_episode(steps, i, cameras=CAMS, image_size=size) for i in range(n_eps)]


def bench_append(root: Path, episodes) -> tuple[str, float, float]:
    url = str(root / "bench.zarr")
    t = time.perf_counter()
    store = TrajectoryStore.create(url, image_chunk_steps=32)
    for i, ep in enumerate(episodes):
        store.append_episode(ep, synthetic_meta(i))
    dt = time.perf_counter() - t
    store.close()
    n = sum(len(ep[K.ACTION]) for ep in episodes)
    raw = sum(v.nbytes for ep in episodes for k, v in ep.items() if k not in K.TEXT_STEP_KEYS)
    print(f"append: {n / dt:8.0f} steps/s  {raw / dt / 2**20:7.1f} MB/s raw "
          f"({len(episodes)} episodes, {n} steps, {dt:.2f} s)")
    return url, n / dt, raw


def write_memmaps(root: Path, store: TrajectoryStore) -> dict[str, np.ndarray]:
    mms = {}
    for k in [K.image_key(c) for c in CAMS] + [K.OBS_STATE, K.ACTION]:
        data = store.read(k)
        mm = np.lib.format.open_memmap(root / f"{k}.npy", mode="w+", dtype=data.dtype, shape=data.shape)
        mm[:] = data
        mm.flush()
        mms[k] = np.load(root / f"{k}.npy", mmap_mode="r")
    return mms


def rate(fn, n_windows: int, min_time: float = 1.0) -> float:
    fn()  # warm up (page cache, lazy opens)
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_time:
        fn()
        count += n_windows
    return count / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="robolearn-bench-"))
    try:
        episodes = make_episodes(args.episodes, args.steps, args.image_size)
        print(f"data: synthetic frames, {len(CAMS)} cameras at {args.image_size}px, "
              f"n_obs=2, horizon=16, batch={args.batch}")
        url, _, raw = bench_append(root, episodes)
        del episodes
        store = TrajectoryStore.open(url)
        stored = store.nbytes_stored()
        print(f"size: raw {raw / 2**20:.1f} MB, stored {stored / 2**20:.1f} MB -> "
              f"{raw / stored:.1f}x smaller (target >= 5x)")

        # ---- 1. store fits in RAM: windows vs the same windows cut from memmaps
        mms = write_memmaps(root, store)
        idx = WindowIndex(store.episode_ends, n_obs=2, horizon=16)
        rng = np.random.default_rng(0)

        def memmap_batch():
            w = idx.windows(rng.integers(0, len(idx), args.batch))
            return [mms[k][w.obs] for k in (K.image_key(c) for c in CAMS)] + \
                [mms[K.OBS_STATE][w.obs], mms[K.ACTION][w.act]]

        ds = WindowDataset(url, n_obs=2, horizon=16, image_keys=[K.image_key(c) for c in CAMS])
        src = ds.source
        assert src.in_memory

        def store_batch():
            w = idx.windows(rng.integers(0, len(idx), args.batch))
            return [src.gather(K.image_key(c), w.obs) for c in CAMS] + \
                [src.gather(K.OBS_STATE, w.obs), src.gather(K.ACTION, w.act)]

        def dataset_batch():
            return ds.__getitems__(rng.integers(0, len(ds), args.batch))

        r_mm = rate(memmap_batch, args.batch)
        r_st = rate(store_batch, args.batch)
        r_ds = rate(dataset_batch, args.batch)
        print(f"in-RAM   memmap baseline {r_mm:9.0f} windows/s")
        print(f"in-RAM   store gather    {r_st:9.0f} windows/s  ratio {r_st / r_mm:.2f}x (target >= 0.5x)")
        print(f"in-RAM   torch batches   {r_ds:9.0f} windows/s  ratio {r_ds / r_mm:.2f}x "
              f"(incl. CHW transpose + tensors + strings)")

        # ---- 2. store larger than the memory budget
        budget_mb = 0.1 * sum(store.nbytes(K.image_key(c)) for c in CAMS) / 2**20
        arrays = {k: store.array(k) for k in [K.image_key(c) for c in CAMS] + [K.OBS_STATE, K.ACTION]}
        n_naive = 60

        def naive():  # per-window slices straight from zarr, what the sampler must not do
            for i in rng.integers(0, len(idx), n_naive):
                w = idx.windows([i])
                o0, o1 = int(w.obs[0, 0]), int(w.obs[0, -1]) + 1
                a0, a1 = int(w.act[0, 0]), int(w.act[0, -1]) + 1
                for c in CAMS:
                    arrays[K.image_key(c)][o0:o1]
                arrays[K.OBS_STATE][o0:o1]
                arrays[K.ACTION][a0:a1]

        r_naive = rate(naive, n_naive, min_time=2.0)
        print(f"budget {budget_mb:.0f} MB (10% of images): naive per-window zarr reads "
              f"{r_naive:7.0f} windows/s")
        for workers in (0, 2):
            dsb = WindowDataset(url, n_obs=2, horizon=16, memory_budget_mb=budget_mb)
            assert not dsb.source.in_memory
            dl = make_dataloader(dsb, batch_size=args.batch, shuffle=True, num_workers=workers)
            for _ in dl:  # epoch 1 warms up: spawned workers import torch and open the store
                pass
            n, t0 = 0, time.perf_counter()
            for b in dl:  # epoch 2, persistent workers, cold chunk caches (new block order)
                n += len(b["index"])
            r = n / (time.perf_counter() - t0)
            print(f"budget {budget_mb:.0f} MB: chunk cache + block shuffle, {workers} workers "
                  f"{r:7.0f} windows/s  ratio {r / r_naive:.1f}x vs naive (target >= 20x)")
            del dl
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
