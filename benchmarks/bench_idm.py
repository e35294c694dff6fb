"""Inverse-dynamics pretraining vs scratch / BC / forward-dynamics pretraining, few demos.

The protocol of Brandfonbrener et al. (2023) on MetaWorld, state observations:

1. **Pretrain** the observation encoder (``train/pretrain``, a learned state MLP of
   ``policy.state_encoder_dim`` features) on a multi-task store in which the task is latent
   (no instruction reaches the encoder): ``inverse`` (a_t..a_{t+k-1} from o_t, o_{t+k}), and
   the baselines ``bc`` (actions from o_t) and ``forward`` (o_{t+k} from o_t and actions).
2. **Fine-tune** a ``bc`` policy (``--policy flow_vla``: the flow policy, whose state token
   then reads the pretrained state encoder) with that encoder (``policy.encoder_init``;
   fine-tuned, and frozen for inverse dynamics) on N demos of a held-out task, N in
   ``--demos``; ``scratch``
   trains the same architecture from random weights.  N demos = a random subset (seeded) of
   the held-out store's successful episodes, copied into their own store, so the
   normalisation statistics come from those N demos only.
3. **Evaluate** each fine-tuned policy on ``--trials`` episodes of the held-out task with
   MetaWorld's success flag (seeds 100000.. = variants 0..49).

Printed: success per method and N (mean +- std over ``--seeds``), and each method's ratio
to ``scratch`` in the same run.  Written: ``results.json`` and ``idm.png`` in ``--out``.

    python benchmarks/bench_idm.py            # collects MT10 + push-back-v3 demos first
    python benchmarks/bench_idm.py --pretrain-store runs/mw/mt10.zarr \\
        --heldout-store runs/mw/push-back.zarr --heldout metaworld/push-back-v3 --out runs/idm
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from common import (ensure_store, one_thread, subset_store, success_vs_demos_plot,
                    train_and_eval)

METHODS = ("scratch", "inverse", "inverse_frozen", "forward", "bc")


def pretrain(objective: str, a: dict) -> str:
    """Pretrain the encoder with ``objective``; returns the run folder."""
    one_thread()
    from robolearn.cli.train import run
    from robolearn.config import compose

    out = Path(a["out"]) / "pretrain" / objective
    if (out / "checkpoints").is_dir() and not a["force"]:
        return str(out)
    cfg = compose("train/pretrain", [
        f"data.store={a['pretrain_store']}", f"out_dir={out}", f"steps={a['pretrain_steps']}",
        f"policy.objective={objective}", f"policy.state_encoder_dim={a['state_dim']}",
        "data.val_ratio=0", "val_every=0", "eval_every=0", f"save_every={a['pretrain_steps']}",
        "data.batch_size=128", "progress=false", "seed=0",
        f"optim.warmup_steps={min(300, a['pretrain_steps'] // 10)}"])
    run(cfg)
    return str(out)


#: what differs per fine-tuned policy: bc has no use for the (one) instruction; flow_vla
#: reads it as prefix tokens anyway, and trains ~20x slower per sample here: half the batch
POLICY_OVERRIDES = {"bc": ["policy.lang_dim=0", "data.batch_size=64"],
                    "flow_vla": ["data.batch_size=32"]}


def finetune_eval(method: str, n: int, seed: int, a: dict) -> dict:
    """Fine-tune ``a['policy']`` with ``method``'s encoder on n demos and evaluate it."""
    root = Path(a["out"])
    store = subset_store(a["heldout_store"], root / "demos" / f"n{n}_s{seed}.zarr", n, seed)
    over = [f"data.store={store}", f"steps={a['finetune_steps']}",
            f"policy.state_encoder_dim={a['state_dim']}", "data.val_ratio=0",
            f"save_every={a['finetune_steps']}", f"seed={seed}",
            "optim.warmup_steps=100", "optim.lr=3e-4", *POLICY_OVERRIDES[a["policy"]]]
    if method != "scratch":
        over.append(f"policy.encoder_init={root / 'pretrain' / method.removesuffix('_frozen')}")
        if method.endswith("_frozen"):
            over.append("policy.freeze_encoder=true")
    prefix = "" if a["policy"] == "bc" else f"{a['policy']}_"
    row = train_and_eval(f"train/{a['policy']}", over,
                         root / "runs" / f"{prefix}{method}_n{n}_s{seed}", a["heldout"],
                         a["trials"], extra={"method": method, "n_demos": n, "seed": seed,
                                             "policy": a["policy"]})
    print(f"{method:15s} n={n:3d} seed={seed}: {row['successes']}/{row['trials']} "
          f"(train {row['train_s']:.0f} s)", flush=True)
    return row


def summarise(rows: list[dict], methods: list[str], demos: list[int]) -> list[dict]:
    table = []
    for n in demos:
        base = [r["success_rate"] for r in rows if r["method"] == "scratch" and r["n_demos"] == n]
        for m in methods:
            v = [r["success_rate"] for r in rows if r["method"] == m and r["n_demos"] == n]
            if not v:
                continue
            mean = float(np.mean(v))
            table.append({"method": m, "n_demos": n, "mean": mean, "std": float(np.std(v)),
                          "seeds": len(v), "vs_scratch": (mean / np.mean(base)
                                                          if base and np.mean(base) > 0 else None)})
    return table


def plot(table: list[dict], path: Path, title: str) -> None:
    def draw(ax):
        for m in dict.fromkeys(r["method"] for r in table):
            rs = [r for r in table if r["method"] == m]
            x = [r["n_demos"] for r in rs]
            y = np.array([r["mean"] for r in rs]) * 100
            s = np.array([r["std"] for r in rs]) * 100
            ax.plot(x, y, marker="o", label=m)
            ax.fill_between(x, y - s, y + s, alpha=0.15)

    success_vs_demos_plot(path, title, "fine-tuning demos of the held-out task",
                          [r["n_demos"] for r in table], draw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pretrain-store", default="",
                    help="multi-task store (default: collect MT10, 300 episodes, into --out)")
    ap.add_argument("--heldout-store", default="",
                    help="demos of the held-out task (default: collect 50 into --out)")
    ap.add_argument("--heldout", default="metaworld/push-back-v3",
                    help="held-out eval task, metaworld/<env> (not in MT10)")
    ap.add_argument("--out", default="runs/bench_idm")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--demos", nargs="+", type=int, default=[5, 10, 25])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--pretrain-steps", type=int, default=3000)
    ap.add_argument("--finetune-steps", type=int, default=1000)
    ap.add_argument("--state-dim", type=int, default=128, help="policy.state_encoder_dim")
    ap.add_argument("--policy", default="bc", choices=sorted(POLICY_OVERRIDES),
                    help="the policy fine-tuned with the pretrained encoder")
    ap.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    ap.add_argument("--force", action="store_true", help="redo runs already in --out")
    args = ap.parse_args()
    root = Path(args.out)
    for d in ("pretrain", "runs", "demos"):
        (root / d).mkdir(parents=True, exist_ok=True)
    from robolearn.envs.metaworld import MT10

    args.pretrain_store = args.pretrain_store or ensure_store(
        root / "mt10.zarr", ["metaworld/" + t for t in MT10], 300)
    args.heldout_store = args.heldout_store or ensure_store(
        root / "heldout.zarr", [args.heldout], 50)
    a = dict(vars(args))
    t0 = time.perf_counter()
    objectives = sorted({m.removesuffix("_frozen") for m in args.methods} - {"scratch"})
    # demo subsets first, in this process (jobs would race to create the same store)
    for n in args.demos:
        for s in range(args.seeds):
            subset_store(args.heldout_store, root / "demos" / f"n{n}_s{s}.zarr", n, s)
    with ProcessPoolExecutor(args.jobs) as ex:
        list(ex.map(pretrain, objectives, [a] * len(objectives)))
        print(f"pretrained {objectives} in {time.perf_counter() - t0:.0f} s", flush=True)
        jobs = [(m, n, s) for n in args.demos for s in range(args.seeds) for m in args.methods]
        futs = [ex.submit(finetune_eval, m, n, s, a) for m, n, s in jobs]
        rows = [f.result() for f in futs]
    table = summarise(rows, args.methods, args.demos)
    print(f"\n{args.heldout}: {args.policy} fine-tuned on N demos, {args.trials} trials, "
          f"{args.seeds} seeds (mean +- std); ratio = method / scratch in this run")
    for r in table:
        ratio = f"x{r['vs_scratch']:.2f}" if r["vs_scratch"] is not None else "-"
        print(f"  N={r['n_demos']:3d} {r['method']:15s} {100 * r['mean']:5.1f} +- "
              f"{100 * r['std']:4.1f} %   {ratio}")
    suffix = "" if args.policy == "bc" else f"_{args.policy}"
    (root / f"results{suffix}.json").write_text(json.dumps(
        {"protocol": {k: v for k, v in a.items() if k != "force"}, "runs": rows,
         "table": table, "wall_s": time.perf_counter() - t0}, indent=1))
    plot(table, root / f"idm{suffix}.png", f"{args.heldout}: encoder pretraining on "
         f"{Path(args.pretrain_store).name}, {args.policy} fine-tuning ({args.seeds} seeds)")
    print(f"wrote {root / f'results{suffix}.json'} and {root / f'idm{suffix}.png'} "
          f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
