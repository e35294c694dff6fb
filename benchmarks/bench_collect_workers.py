"""Collection speed of ``robolearn-collect --workers N``: N processes roll out episodes, the
main one writes them in seed order.

    python benchmarks/bench_collect_workers.py [--workers 2] [--episodes 40] [--scene-frames 0]

Baseline, measured in the same run on the same seeds: one process (``--workers 1``), timed
in alternating blocks so load from other processes hits both alike.  Each block is a whole
``collect`` call into a new store, so the workers' start-up (spawned processes importing
MuJoCo, building their sims) is counted.  Printed: episodes per second of each and the ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile

os.environ.setdefault("MUJOCO_GL", "egl")

from bench_env import interleaved  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="PickPlace")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--episodes", type=int, default=40, help="episodes per method")
    ap.add_argument("--scene-frames", type=int, default=0,
                    help="collect perception frames (N per episode) instead of demos")
    ap.add_argument("--resolution", type=int, default=96)
    args = ap.parse_args(argv)
    from robolearn.cli.collect import collect
    from robolearn.envs.config import CollectConfig

    tmp = tempfile.mkdtemp(prefix="bench_collect_")
    seeds = iter(range(500000, 10**9, 1000))

    def collector(workers):
        def run(n):
            cfg = CollectConfig(tasks=[args.task], episodes=n, seed=next(seeds), gif=False,
                                scene_frames=args.scene_frames, workers=workers,
                                out=os.path.join(tmp, f"w{workers}_{n}.zarr"))
            cfg.env.cameras.resolution = args.resolution
            cfg.env.randomization.pose_jitter = 0.03
            collect(cfg, progress=False)
            shutil.rmtree(cfg.out)
        return run

    try:
        par, one = interleaved(collector(args.workers), collector(1), args.episodes, rounds=4)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    what = f"{args.scene_frames} frames kept" if args.scene_frames else "demos"
    print(f"{args.task} ({what}), cameras at {args.resolution} px, {os.cpu_count()} cores:")
    print(f"  --workers {args.workers}: {par:.2f} episodes/s")
    print(f"  --workers 1 (baseline): {one:.2f} episodes/s")
    print(f"  ratio: x{par / one:.2f}")


if __name__ == "__main__":
    main()
