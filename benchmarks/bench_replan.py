"""Long-horizon task success in sim with vs without grounded re-planning.

    python benchmarks/bench_replan.py [--seeds 3] [--tasks BowlThenCloseDrawer,SortBlocks,TidyUp]

Failures are injected the way the demo collector makes failed episodes: the first ``place``
or ``push`` of every episode runs with its waypoints offset by 10 cm (the cube lands off
target).  Baseline in the same run: the same planner and episodes with ``max_replans=0``.
Planner: the default preset (embedded SmolLM2, feasible-step decoding), one thread.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")


def sabotaging_runner(kinds=("place", "push")):
    import numpy as np

    from robolearn.envs.skills import ExpertContext, check_skill, expert_actions
    from robolearn.skills.compose import expand

    state = {"done": False}

    def run(env, call, skills, on_step=None):
        for prim in expand(call, skills):
            ctx = None
            if prim.skill in kinds and not state["done"]:
                state["done"] = True
                ctx = ExpertContext(env.unwrapped.sim, offset=np.array([0.10, 0.06, 0.0]))
            for n, action in enumerate(expert_actions(env, prim.skill, prim.kwargs, ctx)):
                out = env.step(action)
                if n >= 400:
                    break
            if not check_skill(env.unwrapped.sim, prim.skill, prim.kwargs):
                return False
        return True
    return run, state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--tasks", default="BowlThenCloseDrawer,SortBlocks,TidyUp")
    args = ap.parse_args()
    from robolearn.config import compose
    from robolearn.planner import build_planner
    from robolearn.skills import execute, primitive_skills

    planner = build_planner(primitive_skills(), compose("planner/default"))
    res = {0: [], 2: []}
    for task in args.tasks.split(","):
        for seed in range(args.seeds):
            for replans in (0, 2):
                execute.run_call, _ = sabotaging_runner()
                env = execute.make_env(task)
                _, info = env.reset(seed=seed)
                t0 = time.perf_counter()
                out = execute.execute_plan(planner, env, info["instruction"], replans)
                env.close()
                res[replans].append(out.success)
                print(f"{task:20s} seed {seed} max_replans {replans}: success {out.success} "
                      f"(re-plans {out.replans}, {time.perf_counter() - t0:.0f}s) "
                      f"{info['instruction']!r}", flush=True)
    for k, v in res.items():
        print(f"max_replans={k}: task success {sum(v)}/{len(v)} = {sum(v) / len(v):.2f}")
    if sum(res[0]):
        print(f"ratio with/without re-planning: {sum(res[2]) / sum(res[0]):.2f}x")


if __name__ == "__main__":
    main()
