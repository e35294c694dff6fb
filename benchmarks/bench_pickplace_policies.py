"""flow_vla vs bc vs diffusion on PickPlace from pixels: the policy issue's protocol.

100 scripted PickPlace demos (front + wrist cameras at 96 px + the arm's state; a few spare
episodes are collected because the expert fails ~1% of scenes), each method trained on this
CPU for at most ``--minutes`` of wall clock with its default preset (one method after
another with ``--threads`` torch threads: the whole machine, as the issue asks; ``--jobs 2``
runs them side by side, one thread each), then the standard protocol: ``--trials`` unseen
scenes (seeds 100000..), language = each plan step's instruction, EMA weights, plus the
first ``--train-trials`` training scenes (seeds 0..: memorised or not).  Printed: success
with 95% CIs, per-skill success (pick, place), each method's ratio to ``bc`` in this run.
Written: ``results.json``, ``pickplace_policies.png``.

``--dart X`` collects the demos with DART (noise of std X on the executed actions, the
expert's actions recorded: demos that show the way back from small errors).

``--regrasp F`` makes a fraction F of them recovery demos: the cube slips out of the first
grasp and the expert lifts the empty gripper, opens and grasps again.

``--scene-state`` records the scene's object positions beside every step: the training
target of ``flow_vla_scene_aux``, whose image encoder also learns to predict them, and of
``flow_vla_scene_token``, whose policy also reads that estimate as a prefix token (both
still read only cameras + arm state). ``flow_vla_scene_pretrained`` (the same token) first
trains the image encoder + scene head on labelled frames of ``--frames-episodes`` more
layouts (``robolearn-collect --scene-frames``: perception data collected apart from the
demos, whose actions are never learned; collection is not timed), for
``--perception-minutes`` of the budget, then the policy from that run for the rest.
``flow_vla_scene_frozen`` (preset ``train/flow_vla_from_perception``) keeps that stage
frozen, lets the cameras in only through the token, teacher-forces the token with the
recorded positions while training and adds the objects' offsets from the gripper to it.
``flow_vla_scene_frozen_demos`` is that recipe with its perception stage trained on the 100
demos' own frames (5000 steps), no other layouts: what the demos alone teach the encoder.
These three use the pooled-feature scene head (``policy.scene_head=pool``).
``flow_vla_keypoints_demos`` is the presets as they are: the keypoint scene head (image
points per camera, lifted to positions), its perception stage on the 100 demos' own frames
and recorded positions for ``--perception-minutes`` (3000 steps), the policy for the rest.

``--env`` sets the scene: by default the fixed scene with small perturbations
(``env.randomization.pose_jitter=0.03``); ``--env`` with no value is the fully random layout,
which 100 demos do not cover even from privileged state (``bench_demo_scaling.py``).

A method whose run folder already holds a finished checkpoint but no result (the benchmark
was stopped during evaluation) is evaluated, not retrained.

    python benchmarks/bench_pickplace_policies.py                    # ~3.5 h: 3 x 60 min + eval
    python benchmarks/bench_pickplace_policies.py --methods flow_vla --out runs/bench_pp
    # does pretraining help? the pretrained tiny VLA and its random-init twin, same budget
    python benchmarks/bench_pickplace_policies.py --methods flow_vla_pretrained \
        flow_vla_random_init --jobs 2 --threads 1 --minutes 50
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
from common import (ensure_store, eval_run, one_thread, result_path, side_by_side,
                    subset_store, train_and_eval)

# method -> (training preset, its overrides); the first three are the comparison,
# the last two the pretrained tiny VLA against the same architecture from random init
METHODS = {"flow_vla": ("train/flow_vla", []), "bc": ("train/bc", []),
           "diffusion": ("train/diffusion", []),
           "flow_vla_pretrained": ("train/flow_vla_pretrained", []),
           "flow_vla_random_init": ("train/flow_vla_pretrained", ["policy.pretrained_init=false"]),
           # perception variants: conv cells + keypoint tokens; the scene-state auxiliary
           # loss (needs demos collected with --scene-state)
           "flow_vla_conv_kp": ("train/flow_vla", ["policy.vision_type=conv",
                                                   "policy.image_keypoints=true",
                                                   "policy.image_pos_embed=true"]),
           "flow_vla_scene_aux": ("train/flow_vla", ["policy.scene_aux_weight=1.0"]),
           # ... and its estimate of the object positions as one more prefix token
           "flow_vla_scene_token": ("train/flow_vla", ["policy.scene_aux_weight=1.0",
                                                       "policy.scene_token=true"]),
           # ... after a perception stage on labelled frames of many more layouts
           # (--frames-episodes, not demos): the budget covers both stages
           "flow_vla_scene_pretrained": ("train/flow_vla", ["policy.scene_aux_weight=1.0",
                                                            "policy.scene_token=true"]),
           # ... with that stage frozen, the cameras entering only through the token, the
           # token teacher-forced while training and carrying the objects' offsets from the
           # end effector (state[8:11] on the Panda)
           "flow_vla_scene_frozen": ("train/flow_vla_from_perception", []),
           # ... the same, its perception stage trained on the demos themselves (their
           # recorded object positions): no frames of other layouts
           "flow_vla_scene_frozen_demos": ("train/flow_vla_from_perception", []),
           # ... with the keypoint scene head (the presets' default), on the demos alone
           "flow_vla_keypoints_demos": ("train/flow_vla_from_perception", [])}
#: methods whose budget covers a perception stage before the policy
PERCEPTION_METHODS = ("flow_vla_scene_pretrained", "flow_vla_scene_frozen",
                      "flow_vla_scene_frozen_demos", "flow_vla_keypoints_demos")
#: ... of which all but flow_vla_keypoints_demos ran with the pooled-feature scene head (both
#: stages) and that perception stage's old schedule
POOL_HEAD = "policy.scene_head=pool"
POOL_STAGE = [POOL_HEAD, "optim.lr=3e-4", "optim.warmup_steps=500"]
#: ... of which these train it on the demos, for this many steps (~3.5 min at the ~24
#: steps/s train/flow_vla_perception ran at here with 2 threads)
DEMO_PERCEPTION_STEPS = {"flow_vla_scene_frozen_demos": 5000,
                         # the preset's 3000 steps, ~12 min at ~4 steps/s
                         "flow_vla_keypoints_demos": 3000}
SCENE_METHODS = ("flow_vla_scene_aux", "flow_vla_scene_token",
                 *PERCEPTION_METHODS)  # need --scene-state demos
#: seeds of the perception frames' layouts: apart from the demos' (0..) and the eval's (100000..)
FRAMES_SEED = 500000
DEFAULT_METHODS = ["flow_vla", "bc", "diffusion"]
JITTER = ["env.randomization.pose_jitter=0.03"]
#: perception-stage steps per minute (train/flow_vla_perception, batch 32, 2 threads)
PERCEPTION_PER_MIN = 1250


def _trained(run: Path) -> dict | None:
    """steps and training wall time of a finished run folder (None if there is none)."""
    if not (run / "checkpoints" / "latest").exists() or not (run / "metrics.csv").exists():
        return None
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    log = (run / "train.log").read_text() if (run / "train.log").exists() else ""
    return {"steps": int(rows[-1]["step"]) if rows else 0,
            "train_s": None, "epochs": int(rows[-1]["epoch"]) if rows else 0,
            "stopped_by_budget": "max_minutes" in log}


def job(method: str, a: dict) -> dict:
    run = Path(a["out"]) / method
    env = list(a["env"])
    res = result_path(run)
    done = None if res.exists() else _trained(run)
    if done is not None:  # trained earlier, evaluation did not finish
        row = {"method": method, **done,
               **eval_run(run, "PickPlace", a["trials"], "eval/default", env,
                          threads=a["threads"])}
    else:
        preset, extra = METHODS[method]
        steps = a["max_steps"][method]
        minutes = a["minutes"]
        if method in PERCEPTION_METHODS:  # the budget covers both stages
            minutes -= a["perception_minutes"]
            pool = method != "flow_vla_keypoints_demos"
            extra = extra + [POOL_HEAD] * pool + perception_stage(
                run, a, DEMO_PERCEPTION_STEPS.get(method, 0), POOL_STAGE if pool else [])
        over = [f"data.store={a['store']}", f"steps={steps}", f"max_minutes={minutes}",
                f"save_every={steps}", f"seed={a['seed']}", *extra]
        if method in ("flow_vla_pretrained", "flow_vla_random_init"):  # a few hundred steps:
            # warm up over a tenth (the other flow_vla variants keep the preset's, as flow_vla)
            over.append(f"optim.warmup_steps={max(1, steps // 10)}")
        row = train_and_eval(preset, over, run, "PickPlace", a["trials"],
                             eval_preset="eval/default", extra={"method": method},
                             eval_overrides=env, threads=a["threads"])
    if a["train_trials"] and "train_seeds" not in row:
        seen = eval_run(run, "PickPlace", a["train_trials"], "eval/default",
                        env + ["seed=0"], report_dir="eval_training_scenes",
                        threads=a["threads"])
        row["train_seeds"] = {k: seen[k] for k in ("success_rate", "successes", "trials")}
    res.write_text(json.dumps(row))
    print(f"{method:9s}: {row['successes']}/{row['trials']} unseen scenes, skills "
          f"{row['skills']} ({row['steps']} steps)", flush=True)
    return row


def perception_stage(run: Path, a: dict, demo_steps: int = 0,
                     overrides: list[str] = ()) -> list[str]:
    """The first stage of the PERCEPTION_METHODS: collect labelled frames of
    ``--frames-episodes`` layouts (robolearn-collect --scene-frames; not demos, their actions
    are never learned) and train the image encoder + scene head on them for
    ``--perception-minutes`` (train/flow_vla_perception); ``demo_steps > 0``: train them on
    the demos' own frames instead, for that many steps. Returns the policy stage's
    ``policy.init_from`` override."""
    from robolearn.cli.train import run as train
    from robolearn.config import compose

    root = Path(a["out"])
    frames = a["store"] if demo_steps else ensure_store(
        root / "frames.zarr", ["PickPlace"], a["frames_episodes"],
        list(a["env"]) + ["gif=false", f"scene_frames={a['scene_frames']}",
                          f"seed={FRAMES_SEED}"], preset="collect/pickplace")
    stage = run / "perception"
    if not (stage / "checkpoints").is_dir():
        steps = demo_steps or int(PERCEPTION_PER_MIN * a["perception_minutes"])
        one_thread(a["threads"])
        train(compose("train/flow_vla_perception", [
            f"data.store={frames}", f"out_dir={stage}", f"steps={steps}",
            f"max_minutes={a['perception_minutes']}", f"save_every={steps}",
            f"seed={a['seed']}", "progress=false", "eval_every=0", "val_every=0",
            *overrides]))
    return [f"policy.init_from={stage}"]


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    x = np.arange(len(rows))
    rate = np.array([r["success_rate"] for r in rows])
    err = np.array([[r["success_rate"] - r["ci95"][0], r["ci95"][1] - r["success_rate"]]
                    for r in rows]).T
    ax.bar(x, 100 * rate, yerr=100 * err, capsize=3, color="#4c72b0", label="task (95% CI)")
    for skill, mark in (("pick", "^"), ("place", "s")):
        ys = [100 * r["skills"][skill][0] / max(1, r["skills"][skill][1])
              if skill in r["skills"] else np.nan for r in rows]
        ax.plot(x, ys, mark, color="#dd8452" if skill == "pick" else "#55a868", ls="",
                label=f"{skill} step (of attempts)")
    if all("train_seeds" in r for r in rows):
        ax.plot(x, [100 * r["train_seeds"]["success_rate"] for r in rows], "x", color="k",
                label="task, training scenes")
    ax.axhline(80, color="grey", ls="--", lw=0.8)
    ax.set_xticks(x, [f"{r['method']}\n{r['steps']} steps" for r in rows], fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("success (%)")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def loss_plot(methods: list[str], root: Path, path: Path) -> None:
    """Each method's training loss against its optimiser steps (its own loss: the flow
    matching and denoising losses are not on the MSE's scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for m in methods:
        f = root / m / "metrics.csv"
        if not f.exists():
            continue
        with open(f) as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("loss")]
        steps = np.array([int(r["step"]) for r in rows])
        loss = np.array([float(r["loss"]) for r in rows])
        k = max(1, len(loss) // 50)  # running mean over ~2% of the run
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1:], smooth, label=m)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default="", help="store of PickPlace image demos (default: "
                    "collect --demos into --out)")
    ap.add_argument("--demos", type=int, default=100)
    ap.add_argument("--dart", type=float, default=0.0,
                    help="collect the demos with DART noise of this std (robolearn-collect "
                         "--dart; 0 = clean expert)")
    ap.add_argument("--regrasp", type=float, default=0.0,
                    help="recovery demos: fraction whose first grasp slips and the expert "
                         "re-grasps (robolearn-collect --regrasp; 0 = none)")
    ap.add_argument("--scene-state", action="store_true",
                    help="record the scene's object positions in the demos (robolearn-collect "
                         "--scene-state): the target of the flow_vla_scene_* auxiliary loss")
    ap.add_argument("--frames-episodes", type=int, default=3000,
                    help="flow_vla_scene_pretrained/_frozen: layouts of labelled perception frames "
                         "(robolearn-collect --scene-frames; not demos)")
    ap.add_argument("--scene-frames", type=int, default=10, help="frames kept per layout")
    ap.add_argument("--perception-minutes", type=float, default=12.0,
                    help="flow_vla_scene_pretrained/_frozen: minutes of --minutes spent on their "
                         "perception stage (the policy stage gets the rest)")
    ap.add_argument("--env", nargs="*", default=JITTER,
                    help="env overrides for collection and evaluation (none: fully random)")
    ap.add_argument("--out", default="runs/bench_pickplace_policies")
    ap.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, choices=list(METHODS),
                    help="flow_vla_pretrained flow_vla_random_init --jobs 2 --threads 1: "
                         "does pretraining help, under the same budget")
    ap.add_argument("--minutes", type=float, default=60.0, help="training wall clock per method")
    ap.add_argument("--steps", type=int, default=0,
                    help="step cap (the cosine schedule's length; 0: steps per minute measured "
                         "here x --minutes)")
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--train-trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=0, help="methods side by side (0: in turn)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per method")
    args = ap.parse_args()
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    if not args.store:
        # spares: the expert fails ~1% of scenes, 4% (5/120) with DART noise of 0.004
        spare = max(2, args.demos // (5 if args.dart else 20))
        full = ensure_store(root / "collected.zarr", ["PickPlace"], args.demos + spare,
                            list(args.env) + ["gif=false", f"dart={args.dart}",
                                              f"regrasp={args.regrasp}",
                                              f"scene_state={str(args.scene_state).lower()}",
                                              "workers=2"],
                            preset="collect/pickplace")
        args.store = subset_store(full, root / "demos.zarr", args.demos, 0)
    scene_methods = [m for m in args.methods if m in SCENE_METHODS]
    if scene_methods:
        from robolearn import keys as K
        from robolearn.data.store import TrajectoryStore

        if K.OBS_ENV_STATE not in TrajectoryStore.open(args.store).schema:
            raise SystemExit(f"error: {scene_methods[0]} trains on the scene state, which "
                             f"{args.store} does not record: collect with --scene-state "
                             "(into a new --out folder)")
    a = dict(vars(args))
    # step caps so the cosine schedule ends near the budget: steps per minute measured here
    # with 2 threads (flow_vla 7024 in 60 min, bc ~66/min; diffusion stopped by the budget at
    # 2048 of its 2400), the pretrained pair with 1 thread each, side by side (~5 samples/s:
    # EfficientNet-Lite0 and 4 SmolLM2 layers, all trained)
    per_min = {"flow_vla": 117, "bc": 66, "diffusion": 40, "flow_vla_pretrained": 9,
               "flow_vla_random_init": 9, "flow_vla_conv_kp": 66, "flow_vla_scene_aux": 117,
               "flow_vla_scene_token": 117, "flow_vla_scene_pretrained": 117,
               # no image tokens, no encoder backward: ~8 steps/s on the later, faster
               # machine; 333/min caps it at 16000 (~33 min there) in a 48-minute stage
               "flow_vla_scene_frozen": 333, "flow_vla_scene_frozen_demos": 333,
               "flow_vla_keypoints_demos": 333}
    a["max_steps"] = {m: args.steps or int(per_min[m] * args.minutes) for m in METHODS}
    for m in PERCEPTION_METHODS:  # their policy stage gets what the perception stage leaves
        a["max_steps"][m] = args.steps or int(per_min[m] * (args.minutes
                                                             - args.perception_minutes))
    t0 = time.perf_counter()
    rows = side_by_side(job, args.methods, a, args.jobs)
    base = next((r["success_rate"] for r in rows if r["method"] == "bc"), None)
    scene = " ".join(args.env) or "fully random layout"
    if args.dart:
        scene += f", DART demos {args.dart:g}"
    if args.regrasp:
        scene += f", re-grasp demos {args.regrasp:g}"
    print(f"\nPickPlace from pixels, {args.demos} demos ({scene}), at most {args.minutes:g} "
          f"min training each, {args.trials} unseen scenes; ratio = success / bc's")
    print("| method | steps | unseen scenes (95% CI) | pick | place | training scenes | ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        sk = r["skills"]
        seen = r.get("train_seeds")
        ratio = f"x{r['success_rate'] / base:.2f}" if base else "-"
        skills = " | ".join(f"{sk[k][0]}/{sk[k][1]}" if k in sk else "-"
                            for k in ("pick", "place"))
        seen = f"{seen['successes']}/{seen['trials']}" if seen else "-"
        print(f"| {r['method']} | {r['steps']} | {r['successes']}/{r['trials']} "
              f"({100 * r['ci95'][0]:.0f}-{100 * r['ci95'][1]:.0f}%) | {skills} | {seen} | "
              f"{ratio} |")
    (root / "results.json").write_text(json.dumps(
        {"protocol": a, "runs": rows, "wall_s": time.perf_counter() - t0}, indent=1))
    plot(rows, root / "pickplace_policies.png",
         f"PickPlace from pixels, {args.demos} demos, <= {args.minutes:g} min CPU each ({scene})")
    loss_plot(args.methods, root, root / "training_loss.png")
    print(f"wrote {root / 'results.json'}, {root / 'pickplace_policies.png'} and "
          f"{root / 'training_loss.png'}")


if __name__ == "__main__":
    main()
