"""``robolearn-collect``: scripted-expert demonstrations from the MuJoCo sim into a Zarr store.

Examples::

    robolearn-collect --task PickPlace --episodes 50 --out runs/pp/demos.zarr
    robolearn-collect --task PickPlace Push SortBlocks --episodes 90 --noise 0.01 \\
        --noisy-fraction 0.3 --failed-fraction 0.2 --robot ur5e --resolution 128
    robolearn-collect --preset collect/mixture episodes=20     # hydra preset + overrides

Episode ``i`` uses seed ``--seed + i`` and task ``tasks[i % len(tasks)]``, so the run is
reproducible and an interrupted run can be continued with ``--seed`` moved on.  Each
episode is appended atomically when it ends: Ctrl-C (or a kill) loses at most the episode
in progress.  One rollout GIF per task is written beside the store (for the README).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="robolearn-collect", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default=None,
                    help="hydra preset under configs/ (e.g. collect/mixture); flags override it")
    ap.add_argument("--task", nargs="+", dest="tasks", default=None,
                    help="task name(s); several = a round-robin mixture (default PickPlace)")
    ap.add_argument("--episodes", type=int, default=None, help="episodes to write (default 10)")
    ap.add_argument("--out", default=None, help="store path or fsspec URL (appends if it exists)")
    ap.add_argument("--seed", type=int, default=None, help="base seed; episode i uses seed+i")
    ap.add_argument("--noise", type=float, default=None,
                    help="action noise std as a fraction of the joint range (e.g. 0.01)")
    ap.add_argument("--dart", type=float, default=None,
                    help="DART: noise std (unit as --noise) on the executed action only, the "
                         "expert's action recorded (e.g. 0.004)")
    ap.add_argument("--regrasp", type=float, default=None,
                    help="recovery demos: fraction of episodes whose first grasp slips, so "
                         "the expert re-grasps (tabletop tasks; e.g. 0.3)")
    ap.add_argument("--scene-state", action="store_true", default=None,
                    help="also record observation.environment_state, the scene's object "
                         "positions, and observation.keypoints.<camera>, where each camera "
                         "images them (tabletop tasks): training targets, never inputs")
    ap.add_argument("--scene-frames", type=int, default=None,
                    help="perception data, not demos: keep only N random steps of each "
                         "episode with their object positions (implies --scene-state; "
                         "pretrains flow_vla's encoder: train/flow_vla_perception)")
    ap.add_argument("--noisy-fraction", type=float, default=None,
                    help="fraction of episodes with --noise (default: all if --noise > 0)")
    ap.add_argument("--failed-fraction", type=float, default=None,
                    help="fraction of deliberately failed (labelled) episodes")
    ap.add_argument("--robot", default=None, choices=["panda", "ur5e"], help="arm model")
    ap.add_argument("--resolution", type=int, default=None, help="camera image size (px)")
    ap.add_argument("--cameras", nargs="*", default=None,
                    help="cameras to record (front overhead wrist); none = state only")
    ap.add_argument("--action-space", default=None, choices=["joint_pos", "ee_delta"])
    ap.add_argument("--workers", type=int, default=None,
                    help="processes collecting at once, each with its own sim (default 1); "
                         "the store is the same, written in seed order")
    ap.add_argument("--no-gif", action="store_true", help="skip the per-task rollout GIFs")
    ap.add_argument("--gif-dir", default=None, help="GIF folder (default: beside the store)")
    ap.add_argument("--list-tasks", action="store_true", help="print the tasks and exit")
    ap.add_argument("overrides", nargs="*", help="key=value overrides of the preset")
    return ap


#: collection options only the tabletop backend's rollout takes, and what they need there
TABLETOP_ONLY = {"regrasp": "makes the tabletop pick expert re-grasp (a grasp to retry)",
                 "scene_state": "records the tabletop scene's object positions (such state)",
                 "scene_frames": "keeps labelled frames of the tabletop scene (such state)"}


def resolve_config(args: argparse.Namespace):
    """Preset (or schema defaults) <- key=value overrides <- explicit flags."""
    from robolearn.envs.config import CollectConfig

    if args.preset:
        from robolearn.config import compose

        cfg = compose(args.preset, args.overrides)
    else:
        if args.overrides:
            raise SystemExit(f"error: key=value overrides {args.overrides} need --preset")
        cfg = CollectConfig()
    flags = {"tasks": args.tasks, "episodes": args.episodes, "out": args.out, "seed": args.seed,
             "noise": args.noise, "failed_fraction": args.failed_fraction, "dart": args.dart,
             "regrasp": args.regrasp, "scene_state": args.scene_state,
             "scene_frames": args.scene_frames, "workers": args.workers}
    for k, v in flags.items():
        if v is not None:
            setattr(cfg, k, v)
    if args.noisy_fraction is not None:
        cfg.noisy_fraction = args.noisy_fraction
    elif args.noise is not None and args.noise > 0 and cfg.noisy_fraction == 0:
        cfg.noisy_fraction = 1.0
    if args.no_gif:
        cfg.gif = False
    if args.gif_dir is not None:
        cfg.gif_dir = args.gif_dir
    env = cfg.env
    if args.robot:
        env.robot = args.robot
    if args.action_space:
        env.action_space = args.action_space
    if args.resolution:
        env.cameras.resolution = args.resolution
    if args.cameras is not None:
        env.cameras.names = list(args.cameras)
    return cfg


def _check(cfg) -> None:
    from robolearn.envs.backends import backends_for

    try:
        families = {b.name for b in backends_for(cfg.tasks)}
    except KeyError as e:
        raise SystemExit(f"error: {e.args[0]}") from None
    for name, why in TABLETOP_ONLY.items():
        if getattr(cfg, name) and families != {"tabletop"}:
            flag = "--" + name.replace("_", "-")
            raise SystemExit(f"error: {flag} {why}; {sorted(families - {'tabletop'})} tasks "
                             f"have none (collect them without {flag})")
    if cfg.episodes < 1:
        raise SystemExit("error: --episodes must be >= 1")
    if cfg.workers < 1:
        raise SystemExit(f"error: --workers must be >= 1, got {cfg.workers}")
    if cfg.scene_frames < 0:
        raise SystemExit("error: --scene-frames must be >= 0 (0 = keep every step)")
    for name in ("noisy_fraction", "failed_fraction", "regrasp"):
        v = getattr(cfg, name)
        if not 0.0 <= v <= 1.0:
            raise SystemExit(f"error: {name} must be in [0, 1], got {v}")
    if cfg.noise < 0:
        raise SystemExit("error: --noise must be >= 0")
    if cfg.dart < 0:
        raise SystemExit("error: --dart must be >= 0 (0 = off)")


def _open_or_create(out: str):
    from robolearn.data.errors import StoreError
    from robolearn.data.store import TrajectoryStore, is_remote

    if not is_remote(out):
        p = Path(out)
        return TrajectoryStore.open(out, mode="a") if p.exists() and any(p.iterdir()) \
            else TrajectoryStore.create(out, overwrite=p.exists())
    try:
        return TrajectoryStore.open(out, mode="a")
    except StoreError:
        return TrajectoryStore.create(out)


def _check_frames_match(store, scene_frames: int) -> None:
    """Labelled perception frames and demonstrations never share a store: a policy that
    learned actions from it would learn them from steps that are no trajectory."""
    if not store.n_episodes:
        return
    held = bool(store.episode_meta(0).get("scene_frames", 0))
    if held != (scene_frames > 0):
        what = ("perception frames (--scene-frames)" if held else "demonstrations")
        raise SystemExit(f"error: {store.url} holds {what}; "
                         f"{'demonstrations' if held else 'scene frames'} go into a store of "
                         "their own: pass a new --out")


def _plan(cfg) -> list[tuple[str, int, str, bool]]:
    """Every episode's (task, seed, quality, records its task's GIF): the quality is a
    function of the seed alone, so the GIF goes to each task's first expert episode before
    any of them runs, whichever process runs it."""
    from robolearn.envs.demos import choose_quality

    jobs, gif_done = [], set()
    for i in range(cfg.episodes):
        task, seed = cfg.tasks[i % len(cfg.tasks)], cfg.seed + i
        quality = choose_quality(np.random.default_rng([seed, 104729]), cfg.noise,
                                 cfg.noisy_fraction, cfg.failed_fraction)
        gif = cfg.gif and quality == "expert" and task not in gif_done
        if gif:
            gif_done.add(task)
        jobs.append((task, seed, quality, gif))
    return jobs


def _run_episode(cfg, job, envs: dict):
    """One planned episode in this process's env of its task: (steps, meta, gif frames and
    their rate, or None)."""
    from robolearn.envs.backends import backend_for

    task, seed, quality, gif = job
    backend = backend_for(task)
    if task not in envs:
        envs[task] = backend.make_collect_env(task, cfg.env)
    frames: list | None = [] if gif else None
    extra = {k: getattr(cfg, k) for k in TABLETOP_ONLY if getattr(cfg, k)}
    steps, meta = backend.rollout(envs[task], seed, quality=quality, noise=cfg.noise,
                                  video=frames, dart=cfg.dart, **extra)
    return steps, meta, (frames, backend.video_fps(envs[task])) if frames else None


_WORKER: dict = {}  # a collection worker process's config and envs


def _worker_init(cfg) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the writer's to handle
    _WORKER.update(cfg=cfg, envs={})


def _worker_episode(job):
    return _run_episode(_WORKER["cfg"], job, _WORKER["envs"])


def _episodes(cfg, jobs, envs: dict):
    """(job, (steps, meta, gif)) in seed order: run here, or by ``cfg.workers`` processes
    (spawned: a forked MuJoCo/EGL context is not safe) of which each keeps its own envs."""
    if cfg.workers <= 1:
        for job in jobs:
            yield job, _run_episode(cfg, job, envs)
        return
    import multiprocessing as mp

    pool = mp.get_context("spawn").Pool(min(cfg.workers, len(jobs)), _worker_init, (cfg,))
    try:
        yield from zip(jobs, pool.imap(_worker_episode, jobs))
    finally:
        pool.terminate()  # an interrupt drops the episodes in flight, never a written one
        pool.join()


def collect(cfg, progress: bool = True) -> dict:
    """Write ``cfg.episodes`` episodes; return a summary (also saved beside the store)."""
    from robolearn.data.store import is_remote
    from robolearn.envs.backends import backends_for
    from robolearn.utils.video import write_gif

    _check(cfg)
    for b in backends_for(cfg.tasks):
        b.require()
    out = str(cfg.out)
    run_dir = Path(cfg.gif_dir) if cfg.gif_dir else (
        Path(out).parent if not is_remote(out) else Path("runs/collect"))
    run_dir.mkdir(parents=True, exist_ok=True)
    store = _open_or_create(out)
    _check_frames_match(store, cfg.scene_frames)
    envs: dict = {}
    summary: dict = {"store": out, "tasks": {}, "episodes_written": 0, "interrupted": False,
                     "workers": cfg.workers}
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    bar = tqdm(total=cfg.episodes, desc="collect", unit="ep", disable=not progress) if tqdm else None
    t0 = time.time()
    episodes = _episodes(cfg, _plan(cfg), envs)
    try:
        for (task, _, quality, _), (steps, meta, gif_frames) in episodes:
            store.append_episode(steps, meta)  # atomic; Ctrl-C waits for its commit
            s = summary["tasks"].setdefault(task, {"episodes": 0, "successes": 0,
                                                   "by_quality": {}})
            s["episodes"] += 1
            s["successes"] += int(meta["success"])
            q = s["by_quality"].setdefault(quality, [0, 0])
            q[0] += 1
            q[1] += int(meta["success"])
            summary["episodes_written"] += 1
            if gif_frames:
                gif = run_dir / f"{task.replace('/', '_')}.gif"
                write_gif(gif, *gif_frames)
                summary.setdefault("gifs", {})[task] = str(gif)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(task=task, ok=int(meta["success"]), q=quality[0])
    except KeyboardInterrupt:
        summary["interrupted"] = True
        print(f"\ninterrupted: {summary['episodes_written']} episodes were written to {out}; "
              f"the episodes in progress were dropped", file=sys.stderr)
    finally:
        episodes.close()  # stops the worker processes
        if bar is not None:
            bar.close()
        store.close()
        for env in envs.values():
            env.close()
    summary["seconds"] = round(time.time() - t0, 1)
    summary["config"] = dataclasses.asdict(cfg)
    if not is_remote(out):
        (run_dir / "collect_summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_tasks:
        from robolearn.envs.backends import backends

        for b in backends():
            print(f"{b.name}:")
            for name, desc in b.tasks():
                print(f"  {name:28s} {desc}")
        return 0
    cfg = resolve_config(args)
    try:
        summary = collect(cfg)
    except Exception as e:  # one clear line for bad input; tracebacks for real bugs stay below
        from robolearn.data.errors import StoreError
        from robolearn.envs.assets import AssetsMissingError

        if isinstance(e, (StoreError, AssetsMissingError)):
            print(f"error: {e}", file=sys.stderr)
            return 2
        raise
    for task, s in summary["tasks"].items():
        print(f"{task}: {s['successes']}/{s['episodes']} successful "
              f"(by quality [n, ok]: {s['by_quality']})")
    print(f"wrote {summary['episodes_written']} episodes to {summary['store']} in "
          f"{summary['seconds']} s")
    return 130 if summary["interrupted"] else 0


if __name__ == "__main__":
    sys.exit(main())
