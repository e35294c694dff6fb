"""Success vs number of demonstrations on a tabletop task, from state, at a fixed budget.

How many scripted demos does a policy need before it generalises to unseen scenes?  The
tabletop randomises three cubes (positions, yaws), the bowl and the pad every episode and
names the cube only in words, so a policy must read the instruction and the right cube's
coordinates.  This trains ``bc`` (default: the MLP of the other state benchmarks) on
``--demos`` episodes (subsets of one store, so bigger sets contain smaller ones), the same
number of steps each, observation = the arm's state + the scene's object state
(``env.object_state=true``, privileged: it isolates what the data teaches from what the
cameras show), and scores ``--trials`` evaluation scenes (seeds 100000..) plus the first
``--train-trials`` training scenes (seeds 0..: memorised or not).

``--floors`` adds runs at other ``policy.state_scale_floor`` values at the largest N (0 =
divide every state feature by its own std, however small: the behaviour before the floor
existed).

    python benchmarks/bench_demo_scaling.py --out runs/bench_demo_scaling
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from common import (ensure_store, eval_run, result_path, side_by_side, subset_store,
                    success_vs_demos_plot, train_and_eval)

ENV = ["env.object_state=true", "env.cameras.names=[]"]


def job(key: str, a: dict) -> dict:
    env = ENV + a["env"]
    n, floor = (float(x) for x in key.split("@"))
    n = int(n)
    root = Path(a["out"])
    store = root / "demos" / f"n{n}.zarr"
    over = [f"data.store={store}", f"steps={a['steps']}", f"save_every={a['steps']}",
            f"policy.state_scale_floor={floor}", f"policy.backbone={a['backbone']}",
            "data.val_ratio=0", "data.batch_size=128", "optim.lr=3e-4",
            "optim.warmup_steps=200"]
    name = f"n{n}_floor{floor:g}"
    row = train_and_eval("train/bc", over, root / "runs" / name, a["task"], a["trials"],
                         eval_preset="eval/default", extra={"demos": n, "floor": floor},
                         eval_overrides=env)
    if a["train_trials"]:
        if "train_seeds" not in row:
            seen = eval_run(root / "runs" / name, a["task"], a["train_trials"], "eval/default",
                            env + ["seed=0"], report_dir="eval_training_scenes")
            row["train_seeds"] = {k: seen[k] for k in ("success_rate", "successes", "trials")}
            result_path(root / "runs" / name).write_text(json.dumps(row))  # cache it too
    print(f"{name:16s} eval scenes {row['successes']}/{row['trials']}"
          + (f", training scenes {row['train_seeds']['successes']}/"
             f"{row['train_seeds']['trials']}" if a["train_trials"] else "")
          + f" ({row['steps']} steps, train {row['train_s']:.0f} s)", flush=True)
    return row


def plot(rows: list[dict], path: Path, task: str) -> None:
    def draw(ax):
        for floor in sorted({r["floor"] for r in rows}, reverse=True):
            sel = sorted((r for r in rows if r["floor"] == floor), key=lambda r: r["demos"])
            x = [r["demos"] for r in sel]
            label = f"state floor {floor:g}" + (" (off)" if floor == 0 else "")
            ax.errorbar(x, [100 * r["success_rate"] for r in sel], fmt="o-", capsize=3,
                        yerr=[[100 * (r["success_rate"] - r["ci95"][0]) for r in sel],
                              [100 * (r["ci95"][1] - r["success_rate"]) for r in sel]],
                        label=f"unseen scenes, {label}")
            if all("train_seeds" in r for r in sel):
                ax.plot(x, [100 * r["train_seeds"]["success_rate"] for r in sel], "x--",
                        label=f"training scenes, {label}")

    success_vs_demos_plot(path, f"{task} from state: success vs demos", "demonstrations",
                          [r["demos"] for r in rows], draw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="Pick")
    ap.add_argument("--demos", type=int, nargs="+", default=[100, 300, 1000])
    ap.add_argument("--floors", type=float, nargs="+", default=[0.01],
                    help="policy.state_scale_floor values (the first is run at every N, "
                         "the others at the largest, where the policy is otherwise competent)")
    ap.add_argument("--store", default="", help="(default: collect max(--demos) into --out)")
    ap.add_argument("--out", default="runs/bench_demo_scaling")
    ap.add_argument("--steps", type=int, default=15000)
    ap.add_argument("--backbone", default="mlp", choices=["mlp", "transformer"])
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--train-trials", type=int, default=20)
    ap.add_argument("--env", nargs="*", default=[],
                    help="env overrides for collection and evaluation, e.g. "
                         "env.randomization.pose_jitter=0.03 (the fixed scene with small "
                         "perturbations instead of the fully random layout)")
    ap.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    args = ap.parse_args()
    root = Path(args.out)
    (root / "demos").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    spare = max(args.demos) // 20  # the expert fails ~1-2% of scenes
    args.store = args.store or ensure_store(root / "demos.zarr", [args.task],
                                            max(args.demos) + spare,
                                            ENV + args.env + ["gif=false"],
                                            preset="collect/pickplace")
    for n in args.demos:  # here, not in the jobs (they would race to create them)
        subset_store(args.store, root / "demos" / f"n{n}.zarr", n, 0)
    keys = [f"{n}@{args.floors[0]}" for n in args.demos]
    keys += [f"{max(args.demos)}@{f}" for f in args.floors[1:]]
    rows = side_by_side(job, keys, dict(vars(args)), args.jobs)
    print(f"\n{args.task} from state, {args.steps} steps each, {args.trials} unseen scenes"
          + (f" ({' '.join(args.env)})" if args.env else ""))
    print("| demos | state floor | unseen scenes (95% CI) | training scenes | steps |")
    print("|---|---|---|---|---|")
    for r in rows:
        seen = r.get("train_seeds")
        print(f"| {r['demos']} | {r['floor']:g} | {r['successes']}/{r['trials']} "
              f"({100 * r['ci95'][0]:.0f}-{100 * r['ci95'][1]:.0f}%) | "
              + (f"{seen['successes']}/{seen['trials']}" if seen else "-")
              + f" | {r['steps']} |")
    (root / "results.json").write_text(json.dumps(
        {"protocol": vars(args), "runs": rows, "wall_s": time.perf_counter() - t0}, indent=1))
    plot(rows, root / "demo_scaling.png", args.task)
    print(f"wrote {root / 'results.json'} and {root / 'demo_scaling.png'} "
          f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
