"""SPRINT pretraining vs plain language-conditioned BC on a long-horizon task, same budgets.

Pretraining data: skill-annotated episodes of *short* tasks (default PickPlace,
CloseDrawer, OpenDrawer, Pick: every step labelled with its skill); the long-horizon
target task (default BowlThenCloseDrawer: pick, place in the bowl, close the drawer) is
never in it.  Observations: the tabletop's state with the scene's object state
(``env.object_state=true``; state-only, so it runs on a CPU).

* ``lbc``: ``bc`` pretrained on the episodes with their per-step (skill) instructions,
  then fine-tuned (``policy.init_from``) on N demos of the target task told the whole
  task's instruction (``data.instruction=episode``);
* ``sprint``: ``iql`` pretrained on SPRINT's tasks (``data.sprint=true``: skills,
  relabelled chains, cross-trajectory chains), then fine-tuned the same way with IQL;
* ``scratch``: ``bc`` trained on the N demos alone (the floor);
* ``lbc+plan``, ``sprint+plan``: the pretrained policies, not fine-tuned, told the target's
  plan one step instruction at a time (``language=plan``), as the LLM planner drives skills.

Pretraining steps and fine-tuning steps are equal across methods.  Scored on
``--trials`` episodes of the target task, the policy told the task's instruction;
printed with the ratio to ``lbc`` in the same run; ``results.json`` and ``sprint.png``.

    python benchmarks/bench_sprint.py --out runs/bench_sprint
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from common import (bar_plot, ensure_store, eval_run, one_thread, result_path, subset_store,
                    train_and_eval)

METHODS = ("lbc", "sprint", "scratch")
ENV = ["env.object_state=true", "env.cameras.names=[]"]


def policy_over(a: dict) -> list[str]:
    return [f"policy.n_obs={a['n_obs']}", f"policy.horizon={a['horizon']}",
            f"policy.n_action_steps={a['n_action_steps']}", f"policy.hidden_dim={a['hidden']}",
            f"policy.n_layers={a['layers']}", "policy.lang_dim=32", "data.val_ratio=0",
            "data.batch_size=128", "optim.lr=3e-4", "optim.warmup_steps=200"]


def pretrain(method: str, a: dict) -> str:
    one_thread()
    from robolearn.cli.train import run
    from robolearn.config import compose

    out = Path(a["out"]) / "pretrain" / method
    if (out / "checkpoints").is_dir():
        return str(out)
    preset, extra = (("train/iql", ["data.sprint=true"]) if method == "sprint"
                     else ("train/bc", ["data.success_only=true"]))
    run(compose(preset, [f"data.store={a['pretrain_store']}", f"out_dir={out}",
                         f"steps={a['pretrain_steps']}", f"save_every={a['pretrain_steps']}",
                         "progress=false", "eval_every=0", "val_every=0"]
                + policy_over(a) + extra))
    return str(out)


def plan_eval(method: str, a: dict) -> dict:
    """The pretrained policy, not fine-tuned, on the target task told the plan's step
    instructions one at a time (``language=plan``: how the LLM planner drives skills)."""
    out = Path(a["out"]) / "pretrain" / method
    res = result_path(out.with_name(f"{method}_plan"))
    if res.exists():
        return json.loads(res.read_text())
    row = {"method": f"{method}+plan", "seed": 0,
           **eval_run(out, a["task"], a["trials"], "eval/default",
                      ENV + a["env"] + ["language=plan"], report_dir="eval_plan")}
    res.write_text(json.dumps(row))
    print(f"{method} pretrained, told the plan's steps: {row['successes']}/{row['trials']}",
          flush=True)
    return row


def finetune(method: str, seed: int, a: dict) -> dict:
    root = Path(a["out"])
    store = subset_store(a["target_store"], root / "demos" / f"n{a['demos']}_s{seed}.zarr",
                         a["demos"], seed)
    over = [f"data.store={store}", f"steps={a['finetune_steps']}", f"seed={seed}",
            f"save_every={a['finetune_steps']}", "data.instruction=episode"] + policy_over(a)
    if method != "scratch":
        over.append(f"policy.init_from={root / 'pretrain' / method}")
    row = train_and_eval("train/iql" if method == "sprint" else "train/bc", over,
                         root / "runs" / f"{method}_s{seed}", a["task"], a["trials"],
                         eval_preset="eval/default", extra={"method": method, "seed": seed},
                         eval_overrides=ENV + a["env"] + ["language=instruction"])
    print(f"{method:8s} seed={seed}: {row['successes']}/{row['trials']} "
          f"(fine-tune {row['train_s']:.0f} s, eval {row['eval_s']:.0f} s)", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pretrain-tasks", nargs="+",
                    default=["PickPlace", "CloseDrawer", "OpenDrawer", "Pick"])
    ap.add_argument("--pretrain-episodes", type=int, default=160)
    ap.add_argument("--pretrain-store", default="", help="(default: collect into --out)")
    ap.add_argument("--task", default="BowlThenCloseDrawer", help="long-horizon target task")
    ap.add_argument("--target-store", default="", help="(default: collect 20 into --out)")
    ap.add_argument("--demos", type=int, default=10, help="fine-tuning demos of the target")
    ap.add_argument("--out", default="runs/bench_sprint")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--pretrain-steps", type=int, default=4000)
    ap.add_argument("--finetune-steps", type=int, default=1500)
    ap.add_argument("--n-obs", type=int, default=1)
    ap.add_argument("--horizon", type=int, default=8)
    ap.add_argument("--n-action-steps", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--env", nargs="*", default=[],
                    help="scene overrides for collection and eval, e.g. "
                         "env.randomization.pose_jitter=0.03 (default: fully random layout)")
    ap.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    args = ap.parse_args()
    root = Path(args.out)
    for d in ("pretrain", "runs", "demos"):
        (root / d).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    coll = ENV + args.env + ["gif=false"]
    args.pretrain_store = args.pretrain_store or ensure_store(
        root / "pretrain.zarr", args.pretrain_tasks, args.pretrain_episodes, coll,
        preset="collect/pickplace")
    args.target_store = args.target_store or ensure_store(
        root / "target.zarr", [args.task], 2 * args.demos, coll + ["seed=5000"],
        preset="collect/pickplace")
    a = dict(vars(args))
    for s in range(args.seeds):  # here, not in the jobs (they would race to create them)
        subset_store(args.target_store, root / "demos" / f"n{args.demos}_s{s}.zarr",
                     args.demos, s)
    with ProcessPoolExecutor(args.jobs) as ex:
        # a method's fine-tuning starts as soon as its own pretraining is done (IQL's takes
        # ~2.5x bc's): the scratch runs and lbc's fine-tuning fill the core bc frees
        pre = {ex.submit(pretrain, m, a): m
               for m in sorted({m for m in args.methods if m != "scratch"}, reverse=True)}
        futs = [ex.submit(finetune, "scratch", s, a)
                for s in range(args.seeds) if "scratch" in args.methods]
        for f in as_completed(pre):
            f.result()
            print(f"pretrained {pre[f]} in {time.perf_counter() - t0:.0f} s", flush=True)
            futs += [ex.submit(finetune, pre[f], s, a) for s in range(args.seeds)]
            futs.append(ex.submit(plan_eval, pre[f], a))
        rows = [f.result() for f in futs]
    import numpy as np

    base = np.mean([r["success_rate"] for r in rows if r["method"] == "lbc"] or [np.nan])
    print(f"\n{args.task}: {args.demos} fine-tuning demos, {args.trials} trials, "
          f"{args.seeds} seed(s); ratio = method / lbc")
    table = []
    for m in list(args.methods) + [f"{m}+plan" for m in args.methods if m != "scratch"]:
        mine = [r for r in rows if r["method"] == m]
        v = [r["success_rate"] for r in mine]
        # plan progress (share of the task's skills done): a signal while success is ~0
        p = [r["per_task"][0].get("plan_progress", np.nan) for r in mine]
        skills = {}
        for r in mine:
            for k, (ok, n) in r["skills"].items():
                s = skills.setdefault(k, [0, 0])
                s[0], s[1] = s[0] + ok, s[1] + n
        table.append({"method": m, "mean": float(np.mean(v)), "std": float(np.std(v)),
                      "seeds": len(v), "vs_lbc": float(np.mean(v) / base) if base > 0 else None,
                      "progress": float(np.mean(p)), "progress_std": float(np.std(p)),
                      "skills": skills})
        print(f"  {m:8s} {100 * np.mean(v):5.1f} +- {100 * np.std(v):4.1f} %  "
              + (f"x{np.mean(v) / base:.2f}" if base > 0 else "-")
              + f"  plan progress {100 * np.mean(p):4.1f} +- {100 * np.std(p):4.1f} %  "
              + "  ".join(f"{k} {ok}/{n}" for k, (ok, n) in skills.items()))
    (root / "results.json").write_text(json.dumps(
        {"protocol": a, "runs": rows, "table": table, "wall_s": time.perf_counter() - t0},
        indent=1))
    bar_plot(table, root / "sprint.png", f"{args.task}: fine-tuned on {args.demos} demos; "
             "+plan: pretrained only, told the plan's steps", progress=True)
    print(f"wrote {root / 'results.json'} and {root / 'sprint.png'} "
          f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
