"""Scripted-expert success rates: per primitive skill and per task, over N randomised seeds.

    python benchmarks/bench_experts.py [--robot panda] [--seeds 50] [--workers 2]

Every episode is a fresh seed (poses, colours, lights, camera jitter all re-drawn).  A
skill's rate counts every attempt of that skill inside the primitive tasks (place is
attempted only after its pick succeeded: the count says so).  State-only observations:
rendering does not change what the experts do (they read the sim, not pixels).
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("MUJOCO_GL", "egl")

PRIMITIVE_TASKS = ["Reach", "Pick", "PickPlace", "Push", "OpenDrawer", "CloseDrawer"]
LONG_TASKS = ["BowlThenCloseDrawer", "SortBlocks", "TidyUp"]


def run_task(task: str, robot: str, seeds: int, first_seed: int = 0) -> dict:
    from robolearn.envs.skills import run_skill
    from robolearn.envs.tabletop_env import TabletopEnv

    env = TabletopEnv(task, robot=robot, cameras={"names": []})
    skills = defaultdict(lambda: [0, 0])
    ok, steps, t0, failed = 0, 0, time.time(), []
    for seed in range(first_seed, first_seed + seeds):
        env.reset(seed=seed)
        n = [0]
        for name, args in env.task.plan(env.task_args):
            r = run_skill(env, name, args, on_step=lambda *a: n.__setitem__(0, n[0] + 1))
            skills[name][0] += 1
            skills[name][1] += int(r)
            if not r:
                break
        steps += n[0]
        s = env.task.success(env.sim, env.task_args)
        ok += int(s)
        if not s:
            failed.append(seed)
    env.close()
    return {"task": task, "ok": ok, "n": seeds, "skills": dict(skills), "failed_seeds": failed,
            "steps": steps, "seconds": time.time() - t0}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--robot", default="panda")
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--tasks", nargs="*", default=PRIMITIVE_TASKS + LONG_TASKS)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    jobs = [(t, args.robot, args.seeds, args.first_seed) for t in args.tasks]
    results = []

    def progress(r):  # one line per finished task, so a long run is never all-or-nothing
        print(f"[done] {r['task']}: {r['ok']}/{r['n']} in {r['seconds']:.0f} s", flush=True)
        results.append(r)

    if args.workers > 1:
        import multiprocessing as mp

        with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as ex:
            for r in ex.map(run_task, *zip(*jobs)):
                progress(r)
    else:
        for j in jobs:
            progress(run_task(*j))
    print(f"# expert success, {args.robot}, seeds {args.first_seed}..{args.first_seed + args.seeds - 1}")
    print("\n| task | success | rate | mean steps | failed seeds |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['task']} | {r['ok']}/{r['n']} | {100 * r['ok'] / r['n']:.0f}% | "
              f"{r['steps'] / r['n']:.0f} | {r['failed_seeds'] or '-'} |")
    skills = defaultdict(lambda: [0, 0])
    for r in results:
        if r["task"] in PRIMITIVE_TASKS:
            for k, (n, ok) in r["skills"].items():
                skills[k][0] += n
                skills[k][1] += ok
    print("\n| skill (in primitive tasks) | success | rate |\n|---|---|---|")
    for k, (n, ok) in skills.items():
        print(f"| {k} | {ok}/{n} | {100 * ok / max(n, 1):.0f}% |")


if __name__ == "__main__":
    main()
