"""Helpers the training benchmarks share: train a preset, then score it in sim."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np


def one_thread(threads: int = 1) -> None:
    """One torch thread per job: benchmark jobs run side by side on the cores (``threads``
    more when a job has the machine to itself)."""
    import torch

    torch.set_num_threads(threads)


def train_and_eval(preset: str, overrides: list[str], out: Path, task: str | list[str],
                   trials: int, eval_preset: str = "eval/metaworld_mt10",
                   extra: dict | None = None, eval_overrides: list[str] = (),
                   threads: int = 1) -> dict:
    """``robolearn-train preset`` into ``out``, then ``trials`` episodes of each task.

    Returns (and caches as ``out.json``) the success over all tasks, trial counts, wall
    times, the trained steps and per-task rows (``per_task``); a run whose ``out.json``
    exists is not repeated."""
    from robolearn.cli.train import run
    from robolearn.config import compose

    res = result_path(out)
    if res.exists():
        return json.loads(res.read_text())
    one_thread(threads)
    t0 = time.perf_counter()
    last = run(compose(preset, [f"out_dir={out}", "progress=false", "eval_every=0",
                                "val_every=0"] + overrides))
    row = {**(extra or {}), "train_s": time.perf_counter() - t0,
           "steps": int(last.get("step", 0))}
    row.update(eval_run(out, task, trials, eval_preset, eval_overrides, threads=threads))
    res.write_text(json.dumps(row))
    return row


def result_path(out: Path) -> Path:
    """Where ``train_and_eval`` caches the row of run ``out`` (not ``with_suffix``: run
    names may hold dots)."""
    return out.parent / f"{out.name}.json"


def eval_run(out: Path, task: str | list[str], trials: int,
             eval_preset: str = "eval/metaworld_mt10", eval_overrides: list[str] = (),
             report_dir: str = "eval", threads: int = 1) -> dict:
    """``trials`` episodes of each task with the trained run ``out`` (its latest EMA policy),
    report in ``out/report_dir``: success over all tasks, counts, interval, wall time,
    per-task rows and per-skill ``{skill: [successes, attempts]}``."""
    from robolearn.config import compose
    from robolearn.eval.run import evaluate
    from robolearn.policies.base import load_policy, resolve_policy_dir

    one_thread(threads)
    policy = load_policy(resolve_policy_dir(out))
    tasks = [task] if isinstance(task, str) else list(task)
    proto = compose(eval_preset, ["checkpoint=unused", f"tasks=[{','.join(tasks)}]",
                                  f"trials={trials}", "num_envs=1", "videos=0", *eval_overrides])
    t1 = time.perf_counter()
    rep = evaluate(policy, proto, out / report_dir)
    t = rep["overall"]
    return {"success_rate": t["success_rate"], "successes": t["successes"],
            "trials": t["trials"], "ci95": t["ci95"], "eval_s": time.perf_counter() - t1,
            "per_task": [{k: r[k] for k in ("task", "success_rate", "successes", "trials", "ci95",
                                            "mean_score", "score_ci95", "plan_progress")
                          if k in r} for r in rep["tasks"]],
            "skills": {k["skill"]: [k["successes"], k["attempts"]] for k in rep["skills"]}}


def side_by_side(job, methods: list[str], a: dict, jobs: int) -> list[dict]:
    """``job(method, a)`` for every method, ``jobs`` at a time (capped at the core count;
    0: one after another), results in the order of ``methods``."""
    import os
    from concurrent.futures import ProcessPoolExecutor

    workers = min(jobs, os.cpu_count() or 1, len(methods)) if jobs > 0 else 1
    with ProcessPoolExecutor(workers) as ex:
        return [f.result() for f in [ex.submit(job, m, a) for m in methods]]


def ensure_store(path: str | Path, tasks: list[str], episodes: int,
                 overrides: list[str] = (), preset: str = "collect/metaworld_mt10") -> str:
    """``path`` if it holds a store, else collect it with ``robolearn-collect`` (MetaWorld
    presets: state only) - so the training benchmarks run from a fresh clone.  Collection
    goes to ``<path>.tmp`` and is renamed when complete: an interrupted run leaves no short
    store that the next run would take for the whole one."""
    import shutil

    from robolearn.cli.collect import collect
    from robolearn.config import compose

    p = Path(path)
    if p.exists() and any(p.iterdir()):
        return str(p)
    tmp = p.with_name(p.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"collecting {episodes} episodes of {tasks} into {p}", flush=True)
    cfg = compose(preset, [f"tasks=[{','.join(tasks)}]",
                           f"episodes={episodes}", f"out={tmp}", *overrides])
    collect(cfg, progress=False)
    tmp.rename(p)
    summary = p.parent / "collect_summary.json"
    if summary.is_file():  # name the store where it now is
        summary.write_text(json.dumps({**json.loads(summary.read_text()), "store": str(p)},
                                      indent=1))
    return str(p)


def subset_store(src: str, dst: Path, n: int, seed: int) -> str:
    """N successful episodes of ``src`` chosen by ``seed``, in their own store."""
    from robolearn import keys as K
    from robolearn.data.store import TrajectoryStore, copy_episodes

    if dst.exists():
        return str(dst)
    s = TrajectoryStore.open(src, "r")
    ok = [i for i, m in enumerate(s.all_episode_meta()) if m.get(K.META_SUCCESS)]
    if len(ok) < n:
        raise SystemExit(f"{src} has {len(ok)} successful episodes, {n} requested")
    pick = sorted(np.random.default_rng(seed).choice(ok, n, replace=False).tolist())
    tmp = dst.with_name(dst.name + ".tmp")
    d = TrajectoryStore.create(str(tmp), overwrite=True)
    copy_episodes(s, d, pick)
    tmp.rename(dst)
    return str(dst)


def success_vs_demos_plot(path: Path, title: str, xlabel: str, demos, draw) -> None:
    """A success (%) vs number of demonstrations figure on a log x axis (ticks at
    ``demos``); ``draw(ax)`` adds the lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6, 4))
    draw(ax)
    ax.set_xscale("log")
    ax.set_xticks(sorted(set(demos)))
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.get_xaxis().set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel("success (%)")
    ax.set_ylim(-3, 103)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def bar_plot(table: list[dict], path: Path, title: str, progress: bool = False) -> None:
    """Success per method (``table`` rows: method, mean, std) as a bar chart PNG; with
    ``progress``, each method's mean plan progress (rows' progress, progress_std) beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(table)), 3.5))
    colors = ["#999", "#69c", "#c63", "#6a6"]
    x = np.arange(len(table))
    w = 0.4 if progress else 0.8
    ax.bar(x - (w / 2 if progress else 0), [100 * r["mean"] for r in table], w,
           yerr=[100 * r["std"] for r in table], label="task success",
           color=[colors[i % len(colors)] for i in range(len(table))])
    if progress:
        ax.bar(x + w / 2, [100 * r["progress"] for r in table], w,
               yerr=[100 * r["progress_std"] for r in table], label="plan steps done",
               color=[colors[i % len(colors)] for i in range(len(table))], alpha=0.45,
               hatch="//")
        ax.legend(fontsize=7)
    ax.set_xticks(x, [r["method"] for r in table])
    ax.set_ylabel("success / progress (%)" if progress else "success (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
