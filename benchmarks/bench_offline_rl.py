"""IQL vs behaviour cloning on mixed-quality data (expert + noisy + failed episodes).

One store collected with ``robolearn-collect`` at mixed quality (e.g. MetaWorld push-back:
``noise=0.3 noisy_fraction=0.3 failed_fraction=0.4``; failed episodes are sabotaged: the
expert sees the object and goal 8-12 cm off, or stops short).  Trained with the same
window (``--n-obs`` observations, chunks of ``--horizon``), network width and steps:

* ``bc``: imitation of every episode (what BC does with a mixed log);
* ``bc_success``: imitation of the successful episodes only (``data.success_only``), the
  filtered-BC baseline offline RL must also beat;
* ``iql``: IQL on every episode with the store's sparse success reward.

Each is scored on ``--trials`` episodes of ``--task`` (MetaWorld's success flag) for each
of ``--seeds`` training seeds.  Printed: success per method, mean +- std over seeds, and
the ratio to ``bc`` in the same run; written: ``results.json`` and ``offline_rl.png``.

    python benchmarks/bench_offline_rl.py     # collects the mixed push-back-v3 store first
    python benchmarks/bench_offline_rl.py --store runs/mw/pb_mixed.zarr \\
        --task metaworld/push-back-v3 --out runs/bench_offline_rl
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from common import bar_plot, ensure_store, train_and_eval

METHODS = ("bc", "bc_success", "iql")


def job(method: str, seed: int, a: dict) -> dict:
    common = [f"data.store={a['store']}", f"steps={a['steps']}", f"save_every={a['steps']}",
              "data.val_ratio=0", f"data.batch_size={a['batch_size']}", f"seed={seed}",
              "optim.lr=3e-4", "optim.warmup_steps=200", f"policy.n_obs={a['n_obs']}",
              f"policy.horizon={a['horizon']}", f"policy.n_action_steps={a['horizon']}",
              f"policy.hidden_dim={a['hidden']}", f"policy.n_layers={a['layers']}",
              "policy.lang_dim=0"]
    if method == "iql":
        preset, over = "train/iql", common + [f"policy.beta={a['beta']}",
                                              f"policy.expectile={a['expectile']}"]
    else:
        preset = "train/bc"
        over = common + (["data.success_only=true"] if method == "bc_success" else [])
    row = train_and_eval(preset, over, Path(a["out"]) / f"{method}_s{seed}", a["task"],
                         a["trials"], extra={"method": method, "seed": seed})
    print(f"{method:11s} seed={seed}: {row['successes']}/{row['trials']} "
          f"(train {row['train_s']:.0f} s, eval {row['eval_s']:.0f} s)", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default="", help="mixed-quality store (default: collect 120 "
                    "episodes of --task into --out: 30%% noisy, 40%% failed)")
    ap.add_argument("--task", default="metaworld/push-back-v3", help="eval task")
    ap.add_argument("--out", default="runs/bench_offline_rl")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--seeds", type=int, default=1, help="training seeds per method")
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--n-obs", type=int, default=1)
    ap.add_argument("--horizon", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--beta", type=float, default=3.0)
    ap.add_argument("--expectile", type=float, default=0.7)
    ap.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    args = ap.parse_args()
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    args.store = args.store or ensure_store(
        root / "mixed.zarr", [args.task], 120,
        ["noise=0.3", "noisy_fraction=0.3", "failed_fraction=0.4", "seed=1000"])
    a = dict(vars(args))
    t0 = time.perf_counter()
    from robolearn import keys as K
    from robolearn.data.store import TrajectoryStore

    metas = TrajectoryStore.open(args.store, "r").all_episode_meta()
    mix: dict[str, list[int]] = {}
    for m in metas:
        q = mix.setdefault(str(m.get("quality", "?")), [0, 0])
        q[0] += 1
        q[1] += int(bool(m.get(K.META_SUCCESS)))
    with ProcessPoolExecutor(args.jobs) as ex:
        futs = [ex.submit(job, m, s, a) for s in range(args.seeds) for m in args.methods]
        rows = [f.result() for f in futs]
    table = []
    base = np.mean([r["success_rate"] for r in rows if r["method"] == "bc"] or [np.nan])
    print(f"\n{args.task} from {args.store} (episodes by quality [n, successful]: {mix}); "
          f"{args.trials} trials x {args.seeds} training seeds; ratio = method / bc")
    for m in args.methods:
        v = [r["success_rate"] for r in rows if r["method"] == m]
        ci = [r["ci95"] for r in rows if r["method"] == m]
        table.append({"method": m, "mean": float(np.mean(v)), "std": float(np.std(v)),
                      "seeds": len(v), "vs_bc": float(np.mean(v) / base) if base > 0 else None})
        ratio = f"x{np.mean(v) / base:.2f}" if base > 0 else "-"
        print(f"  {m:11s} {100 * np.mean(v):5.1f} +- {100 * np.std(v):4.1f} %  "
              f"(95% CI of seed 0: {100 * ci[0][0]:.0f}-{100 * ci[0][1]:.0f}%)  {ratio}")
    (root / "results.json").write_text(json.dumps(
        {"protocol": a, "data_mix": mix, "runs": rows, "table": table,
         "wall_s": time.perf_counter() - t0}, indent=1))
    bar_plot(table, root / "offline_rl.png", f"{args.task}: mixed-quality data {mix}")
    print(f"wrote {root / 'results.json'} and {root / 'offline_rl.png'} "
          f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
