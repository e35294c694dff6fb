"""Skill bootstrapping (BOSS) with LLM-guided proposals vs random chaining, same budget.

Each proposer starts from a freshly seeded primitive library and practises for the same
number of episodes on the same sim task and seeds (``robolearn.skills.bootstrap``). Printed
per proposer, in one run:

- composite skills added, library size after every episode (and a plot of both curves);
- held-out success of the new skills (each run on fresh scene seeds);
- the chain length of every episode (a chain ends when no useful call is feasible, at
  ``max_chain``, or on a failed step);
- wall time per episode (the LLM's proposals vs random choice).

    python benchmarks/bench_bootstrap.py --task TidyUp --episodes 12 --out runs/bench_bootstrap
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def run(proposer_kind: str, task: str, episodes: int, holdout: int, out: Path) -> dict:
    from robolearn.skills import SkillStore, seed_store
    from robolearn.skills.bootstrap import Proposer, bootstrap

    backend = None
    if proposer_kind == "llm":
        from robolearn.planner import make_backend

        backend = make_backend("embedded", threads=1)
    store = SkillStore(out / "skills.db")
    seed_store(store)
    start_size = len(store)
    t0 = time.perf_counter()
    rep = bootstrap(store, task, out / "run", episodes=episodes,
                    proposer=Proposer(proposer_kind, backend), holdout_seeds=holdout,
                    progress=False)
    rep["seconds"] = time.perf_counter() - t0
    rep["library_start"] = start_size
    store.close()
    return rep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="TidyUp")
    ap.add_argument("--episodes", type=int, default=12)
    ap.add_argument("--holdout-seeds", type=int, default=2)
    ap.add_argument("--proposers", default="random,llm")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_bootstrap_"))
    reps = {}
    for kind in args.proposers.split(","):
        rep = run(kind, args.task, args.episodes, args.holdout_seeds, out / kind)
        reps[kind] = rep
        lens = rep["chain_lengths"]
        print(f"{kind:6s} {args.task}: {len(rep['added'])} composite skills added in "
              f"{rep['episodes']} episodes, library {rep['library_start']} -> "
              f"{rep['library_size'][-1]}; held-out success "
              f"{rep['heldout_success'] if rep['heldout_success'] is not None else '-'}; "
              f"chain lengths {lens}; {rep['seconds'] / max(1, rep['episodes']):.1f} s/episode",
              flush=True)
        for a in rep["added"]:
            print(f"         + {a['name']}: {' ; '.join(a['chain'])}")
    (out / "bench_bootstrap.json").write_text(json.dumps(reps, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        for kind, rep in reps.items():
            ax.plot(range(1, len(rep["library_size"]) + 1), rep["library_size"], marker="o",
                    label=f"{kind} (held-out {rep['heldout_success']})")
        ax.set_xlabel("practice episode")
        ax.set_ylabel("library size (skills)")
        ax.set_title(f"Bootstrapping on {args.task}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "library_size.png", dpi=120)
    except ImportError:
        pass
    print(f"results: {out / 'bench_bootstrap.json'}, plot {out / 'library_size.png'}")


if __name__ == "__main__":
    main()
