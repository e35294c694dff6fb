"""Perception-frame collection speed: ``robolearn-collect --scene-frames`` renders only the
steps it keeps (afterwards, from snapshots of the sim) instead of every step.

    python benchmarks/bench_scene_frames.py [--episodes 20] [--frames 10] [--resolution 96]

Baseline, measured in the same run on the same seeds: the same expert episodes rendering the
cameras at every step (``--scene-state``, what ``--scene-frames`` did before it kept only N),
timed in alternating blocks so load from other processes hits both alike.  Printed: episodes
per second of each and the ratio.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("MUJOCO_GL", "egl")

from bench_env import interleaved  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="PickPlace")
    ap.add_argument("--episodes", type=int, default=20, help="episodes per method")
    ap.add_argument("--frames", type=int, default=10, help="frames kept per episode")
    ap.add_argument("--resolution", type=int, default=96)
    ap.add_argument("--cameras", nargs="+", default=["front", "wrist"])
    args = ap.parse_args(argv)
    from robolearn.envs.demos import rollout
    from robolearn.envs.tabletop_env import TabletopEnv

    env = TabletopEnv(args.task, cameras={"names": args.cameras, "resolution": args.resolution},
                      randomization={"pose_jitter": 0.03})

    def episodes(**kw):
        seeds = iter(range(500000, 10**9))

        def run(n):
            for _ in range(n):
                rollout(env, next(seeds), **kw)
        return run

    kept, every = interleaved(episodes(scene_frames=args.frames), episodes(scene_state=True),
                              args.episodes, rounds=5)
    env.close()
    print(f"{args.task}, {len(args.cameras)} cameras at {args.resolution} px, {args.frames} "
          f"frames kept per episode:")
    print(f"  render the kept steps only: {kept:.2f} episodes/s")
    print(f"  render every step (baseline): {every:.2f} episodes/s")
    print(f"  ratio: x{kept / every:.2f}")


if __name__ == "__main__":
    main()
