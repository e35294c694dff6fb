"""flow_vla vs diffusion vs bc on MetaWorld, same data, same wall-clock budget, same protocol.

One multi-task, instruction-conditioned policy per method on a documented MetaWorld subset
(default: the three ML1 tasks reach / push / pick-place), trained on MetaWorld's scripted
expert demonstrations (state observations: MetaWorld's cameras cost ~200 ms a frame on this
CPU) for at most ``--minutes`` of wall clock each (the jobs run side by side, one torch thread
each), then scored with MetaWorld's own success flag on ``--trials`` variants per task
(``eval/metaworld_mt10`` protocol: seeds 100000.., horizon 500, chunks executed as each
policy's config says). Printed: success per task and method with 95% CIs, each method's
ratio to ``bc`` in this run, and for orientation the published image-based Diffusion Policy
numbers on the same tasks (a different protocol: see PUBLISHED). Written: ``results.json``
and ``metaworld_policies.png``.

    python benchmarks/bench_metaworld_policies.py            # collects 30 demos per task
    python benchmarks/bench_metaworld_policies.py --minutes 30 --out runs/bench_mw_policies
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import ensure_store, side_by_side, train_and_eval

TASKS = ["metaworld/reach-v3", "metaworld/push-v3", "metaworld/pick-place-v3"]
METHODS = ("bc", "diffusion", "flow_vla")
#: Diffusion Policy (image, one camera) in the 3D Diffusion Policy paper (Ze et al., RSS 2024,
#: arXiv 2403.03954, appendix table of the 72 simulation tasks): MetaWorld v2, 10 scripted
#: demos per task, 3 seeds x 20 episodes, mean of each seed's 5 best evaluations during
#: training, 200-step episodes. Success %, mean +- std over seeds.
PUBLISHED = {"reach": (18, 2), "push": (30, 3), "pick-place": (0, 0), "door-open": (98, 3),
             "drawer-open": (93, 3), "drawer-close": (100, 0), "button-press-topdown": (98, 1),
             "peg-insert-side": (34, 7), "window-open": (100, 0), "window-close": (100, 0)}
#: per-method settings for state-only MetaWorld on a CPU (everything else: the presets)
OVERRIDES = {
    "bc": [],
    # the image-sized U-Net (17 M params) trains at ~30 samples/s here; this one at ~4x that
    "diffusion": ["policy.down_dims=[64,128,256]"],
    # MetaWorld's state is 39-D: pad to 48 instead of the default 32
    "flow_vla": ["policy.max_state_dim=48"],
}


def job(method: str, a: dict) -> dict:
    over = [f"data.store={a['store']}", f"steps={a['max_steps']}", f"max_minutes={a['minutes']}",
            f"save_every={a['max_steps']}", "data.val_ratio=0", f"seed={a['seed']}",
            *OVERRIDES[method]]
    row = train_and_eval(f"train/{method}", over, Path(a["out"]) / method, a["tasks"],
                         a["trials"], extra={"method": method})
    print(f"{method:9s}: {row['successes']}/{row['trials']} after {row['steps']} steps "
          f"(train {row['train_s'] / 60:.1f} min, eval {row['eval_s'] / 60:.1f} min)", flush=True)
    return row


def plot(rows: list[dict], tasks: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    short = [t.split("/")[-1].removesuffix("-v3") for t in tasks]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    width = 0.8 / (len(rows) + 1)
    for i, r in enumerate(rows):
        rates = [100 * p["success_rate"] for p in r["per_task"]]
        err = np.array([[100 * (p["success_rate"] - p["ci95"][0]),
                         100 * (p["ci95"][1] - p["success_rate"])] for p in r["per_task"]]).T
        ax.bar(np.arange(len(tasks)) + i * width, rates, width, yerr=err, capsize=2,
               label=f"{r['method']} ({r['steps']} steps)")
    pub = [PUBLISHED.get(s, (np.nan, 0)) for s in short]
    ax.bar(np.arange(len(tasks)) + len(rows) * width, [p[0] for p in pub], width,
           yerr=[p[1] for p in pub], color="#ccc", hatch="//", label="DP, image (published)")
    ax.set_xticks(np.arange(len(tasks)) + width * len(rows) / 2, short)
    ax.set_ylabel("success (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4)
    ax.set_title("MetaWorld, state + instruction, one multi-task policy per method", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", default="", help="store of expert demos of --tasks (default: "
                    "collect --episodes into --out)")
    ap.add_argument("--tasks", nargs="+", default=TASKS)
    ap.add_argument("--episodes", type=int, default=30, help="demos per task when collecting")
    ap.add_argument("--out", default="runs/bench_metaworld_policies")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--minutes", type=float, default=30.0, help="training wall clock per method")
    ap.add_argument("--max-steps", type=int, default=20000, help="step cap (bc reaches it first)")
    ap.add_argument("--trials", type=int, default=50, help="variants per task")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=3, help="methods trained side by side")
    args = ap.parse_args()
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    args.store = args.store or ensure_store(root / "demos.zarr", args.tasks,
                                            args.episodes * len(args.tasks))
    a = dict(vars(args))
    t0 = time.perf_counter()
    rows = side_by_side(job, args.methods, a, args.jobs)
    base = {p["task"]: p["success_rate"] for r in rows if r["method"] == "bc" for p in r["per_task"]}
    print(f"\n{len(args.tasks)} MetaWorld tasks x {args.trials} variants, store {args.store}; "
          f"budget {args.minutes} min training per method; ratio = method / bc in this run")
    head = f"{'task':24s}" + "".join(f"{r['method']:>22s}" for r in rows) + f"{'DP image (publ.)':>18s}"
    print(head)
    for i, t in enumerate(args.tasks):
        line = f"{t.split('/')[-1]:24s}"
        for r in rows:
            p = r["per_task"][i]
            ratio = (f" x{p['success_rate'] / base[t]:.2f}" if base.get(t) else "")
            line += f"{p['successes']:>6d}/{p['trials']:<3d}({100 * p['ci95'][0]:.0f}-{100 * p['ci95'][1]:.0f}%){ratio:>6s}"
        pub = PUBLISHED.get(t.split("/")[-1].removesuffix("-v3"))
        line += f"{(f'{pub[0]} +- {pub[1]} %' if pub else '-'):>18s}"
        print(line)
    print(f"{'all':24s}" + "".join(f"{r['successes']:>6d}/{r['trials']:<15d}" for r in rows))
    (root / "results.json").write_text(json.dumps(
        {"protocol": a, "runs": rows, "published_dp_image": PUBLISHED,
         "wall_s": time.perf_counter() - t0}, indent=1))
    plot(rows, args.tasks, root / "metaworld_policies.png")
    print(f"wrote {root / 'results.json'} and {root / 'metaworld_policies.png'} "
          f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
