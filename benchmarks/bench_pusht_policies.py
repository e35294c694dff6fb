"""flow_vla vs diffusion vs bc on PushT (gym-pusht), same demos, same budget, gym-pusht's metric.

Demos come from robolearn's scripted pushing expert (``robolearn.envs.pusht``; LeRobot's
human PushT demos cannot be downloaded here - with a local copy, ``robolearn-data convert
lerobot`` turns them into a store this script takes via ``--store``).  Each method trains
one state-based policy (agent position + the T's 8 keypoints, as Diffusion Policy's
low-dim PushT) for at most ``--minutes`` of wall clock (jobs side by side, one torch thread
each), then plays ``--trials`` episodes of the ``eval/pusht`` protocol (seeds 100000..,
horizon 300, chunks of 8 of 16 actions).  Printed: gym-pusht's score (mean over episodes
of the best coverage / 0.95, clipped to 1) with 95% CIs, success (coverage > 0.95), each
method's ratio to ``bc`` in this run, and for orientation the published Diffusion Policy
numbers (a different protocol: see PUBLISHED).  Written: ``results.json``, ``pusht_policies.png``.

    python benchmarks/bench_pusht_policies.py                  # collects 100 demos first
    python benchmarks/bench_pusht_policies.py --minutes 30 --out runs/bench_pusht
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import ensure_store, side_by_side, train_and_eval

METHODS = ("bc", "diffusion", "flow_vla")
#: Diffusion Policy paper (Chi et al., RSS 2023, arXiv 2303.04137, Tables I and II), PushT,
#: 200 human demos, 4500 (state) / 3000 (image) epochs; "max / avg" target-area coverage
#: (best checkpoint / mean of the last 10 checkpoints, each over 3 training seeds x 50
#: initial conditions, seeds 100000..). State (9 T keypoints + agent) and image rows.
PUBLISHED = {
    "state": {"LSTM-GMM": (0.67, 0.61), "IBC": (0.90, 0.84), "BET": (0.79, 0.70),
              "DiffusionPolicy-C": (0.95, 0.91), "DiffusionPolicy-T": (0.95, 0.79)},
    "image": {"LSTM-GMM": (0.69, 0.54), "IBC": (0.75, 0.64),
              "DiffusionPolicy-C": (0.91, 0.84), "DiffusionPolicy-T": (0.78, 0.66)},
}
#: per-method settings for state-only PushT on a CPU (everything else: the presets)
OVERRIDES = {
    "bc": [],
    # the image-sized U-Net (17 M params) trains at ~30 samples/s here; this one at ~4x that
    "diffusion": ["policy.down_dims=[64,128,256]"],
    "flow_vla": [],
}


def job(method: str, a: dict) -> dict:
    over = [f"data.store={a['store']}", f"steps={a['max_steps']}", f"max_minutes={a['minutes']}",
            f"save_every={a['max_steps']}", "data.val_ratio=0", f"seed={a['seed']}",
            "data.images=false", "data.success_only=true", *OVERRIDES[method]]
    row = train_and_eval(f"train/{method}", over, Path(a["out"]) / method, ["pusht"],
                         a["trials"], eval_preset="eval/pusht", extra={"method": method},
                         eval_overrides=["videos=2"])
    p = row["per_task"][0]
    print(f"{method:9s}: score {p['mean_score']:.3f}, success {row['successes']}/{row['trials']} "
          f"after {row['steps']} steps (train {row['train_s'] / 60:.1f} min, eval "
          f"{row['eval_s'] / 60:.1f} min)", flush=True)
    return row


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    names, vals, errs, colors = [], [], [], []
    for r in rows:
        p = r["per_task"][0]
        names.append(f"{r['method']}\n({r['steps']} steps)")
        vals.append(p["mean_score"])
        errs.append([p["mean_score"] - p["score_ci95"][0], p["score_ci95"][1] - p["mean_score"]])
        colors.append("#4c72b0")
    for kind in ("state", "image"):
        for m in ("DiffusionPolicy-C", "IBC"):
            names.append(f"{m}\n{kind} (publ.)")
            vals.append(PUBLISHED[kind][m][1])
            errs.append([0.0, 0.0])
            colors.append("#ccc")
    x = np.arange(len(names))
    ax.bar(x, vals, yerr=np.array(errs).T, capsize=3, color=colors)
    for i, r in enumerate(rows):
        ax.text(i, 0.02, f"{r['successes']}/{r['trials']}\nsucc.", ha="center", fontsize=7,
                color="white")
    ax.set_xticks(x, names, fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score (mean best coverage/0.95)")
    ax.set_title("PushT, state: ours (95% CI) vs published Diffusion Policy (avg, grey)",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default="", help="store of PushT demos (default: collect "
                    "--episodes with the scripted expert into --out)")
    ap.add_argument("--episodes", type=int, default=100, help="demos when collecting")
    ap.add_argument("--out", default="runs/bench_pusht_policies")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--minutes", type=float, default=25.0, help="training wall clock per method")
    ap.add_argument("--max-steps", type=int, default=20000, help="step cap")
    ap.add_argument("--trials", type=int, default=50, help="episodes (start states)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="methods trained side by side")
    args = ap.parse_args()
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    args.store = args.store or ensure_store(root / "demos.zarr", ["pusht"], args.episodes,
                                            preset="collect/pusht")
    a = dict(vars(args))
    t0 = time.perf_counter()
    rows = side_by_side(job, args.methods, a, args.jobs)
    base = next((r["per_task"][0]["mean_score"] for r in rows if r["method"] == "bc"), None)
    print(f"\nPushT x {args.trials} start states, store {args.store}; budget {args.minutes} min "
          f"training per method; ratio = score / bc's in this run")
    print(f"{'method':10s}{'score (95% CI)':>24s}{'success':>18s}{'ratio':>8s}{'steps':>8s}")
    for r in rows:
        p = r["per_task"][0]
        ratio = f"x{p['mean_score'] / base:.2f}" if base else "-"
        print(f"{r['method']:10s}{p['mean_score']:>8.3f} ({p['score_ci95'][0]:.3f}-"
              f"{p['score_ci95'][1]:.3f}){r['successes']:>9d}/{r['trials']:<3d}"
              f"({100 * r['ci95'][0]:.0f}-{100 * r['ci95'][1]:.0f}%){ratio:>7s}{r['steps']:>8d}")
    print("published (Diffusion Policy paper, 200 human demos, max/avg coverage): "
          + "; ".join(f"{k} {m} {v[0]:.2f}/{v[1]:.2f}" for k, d in PUBLISHED.items()
                      for m, v in d.items()))
    (root / "results.json").write_text(json.dumps(
        {"protocol": a, "runs": rows, "published_dp": PUBLISHED,
         "wall_s": time.perf_counter() - t0}, indent=1))
    plot(rows, root / "pusht_policies.png")
    print(f"wrote {root / 'results.json'} and {root / 'pusht_policies.png'} "
          f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
