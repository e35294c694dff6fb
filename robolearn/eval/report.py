"""Evaluation reports: Wilson intervals, report.json + report.md, a success-rate plot."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (sensible at 0% and 100%, unlike +-2 SE)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(x: Sequence[float], z: float = 1.96) -> tuple[float, float]:
    """Normal-approximation 95% interval of a mean (a protocol has >= 50 episodes)."""
    a = np.asarray(x, float)
    half = z * a.std(ddof=1) / math.sqrt(len(a)) if len(a) > 1 else 0.0
    return float(a.mean() - half), float(a.mean() + half)


def latency_summary(chunk_ms: Sequence[float]) -> dict[str, float]:
    if not len(chunk_ms):
        return {}
    a = np.asarray(chunk_ms[1:] if len(chunk_ms) > 1 else chunk_ms)  # first call warms up
    return {"chunk_ms_p50": float(np.percentile(a, 50)), "chunk_ms_p99": float(np.percentile(a, 99)),
            "chunks": int(len(chunk_ms))}


def skill_summary(results: Sequence[Any]) -> list[dict[str, Any]]:
    """Per skill over every task's plan steps: attempts (episodes that reached the step)
    and successes (the step's success check held)."""
    acc: dict[str, list[int]] = {}
    for r in results:
        for t in r.trials:
            for name, ok in t.skill_outcomes():
                a = acc.setdefault(name, [0, 0])
                a[0] += 1
                a[1] += int(ok)
    out = []
    for name, (n, ok) in acc.items():
        lo, hi = wilson_interval(ok, n)
        out.append({"skill": name, "attempts": n, "successes": ok,
                    "success_rate": ok / max(n, 1), "ci95": [lo, hi]})
    return out


def build_report(results: Sequence[Any], protocol, meta: dict[str, Any]) -> dict[str, Any]:
    """JSON-able report: protocol, per-task summaries, every trial, latency, meta."""
    tasks = [r.summary() for r in results]
    n = sum(t["trials"] for t in tasks)
    ok = sum(t["successes"] for t in tasks)
    lo, hi = wilson_interval(ok, n)
    all_ms = [m for r in results for m in r.chunk_ms]
    return {"protocol": asdict(protocol), **meta,
            "overall": {"trials": n, "successes": ok, "success_rate": ok / max(n, 1),
                        "ci95": [lo, hi]},
            "tasks": tasks, "skills": skill_summary(results),
            "latency": latency_summary(all_ms),
            "trials": [asdict(t) for r in results for t in r.trials]}


def write_report(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md", "plot": out / "success.png"}
    paths["json"].write_text(json.dumps(report, indent=2, default=str))
    paths["md"].write_text(markdown(report))
    plot_success(report, paths["plot"])
    return paths


def markdown(report: dict[str, Any]) -> str:
    from robolearn.envs.backends import backends_for

    p = report["protocol"]
    env = p["env"]
    lines = [f"# Evaluation: {report.get('policy_type', '?')} `{report.get('checkpoint', '')}`", "",
             "## Protocol", "",
             f"- tasks: {', '.join(p['tasks'])}; {p['trials']} trials per task, episode seeds "
             f"{p['seed']}..{p['seed'] + p['trials'] - 1}",
             f"- horizon: {p['max_steps'] or 'task default'} control steps; chunk execution: "
             f"{report.get('n_action_steps')} of {report.get('horizon')} actions per predicted "
             f"chunk" + (f"; policy settings {p['policy_overrides']}"
                         if p.get("policy_overrides") else ""),
             f"- language: {p['language']}; {p['num_envs']} parallel envs; policy cameras "
             f"{[k.rsplit('.', 1)[-1] for k in report.get('image_keys', [])] or 'none'}"]
    for b in backends_for(p["tasks"]):
        lines.append(f"- {b.describe(env)}")
    lines += [f"- wall time {report.get('wall_s', 0):.0f} s on {report.get('device', 'cpu')}", "",
              "## Results", "",
             "| task | success | 95% CI | trials | mean steps (successes) | plan progress |",
             "|---|---|---|---|---|---|"]
    for t in report["tasks"]:
        ms = f"{t['mean_steps_success']:.0f}" if t["mean_steps_success"] is not None else "-"
        lines.append(f"| {t['task']} | {100 * t['success_rate']:.0f}% ({t['successes']}/"
                     f"{t['trials']}) | {100 * t['ci95'][0]:.0f}-{100 * t['ci95'][1]:.0f}% | "
                     f"{t['trials']} | {ms} | {100 * t['plan_progress']:.0f}% |")
    o = report["overall"]
    lines.append(f"| **all** | **{100 * o['success_rate']:.0f}%** ({o['successes']}/"
                 f"{o['trials']}) | {100 * o['ci95'][0]:.0f}-{100 * o['ci95'][1]:.0f}% | "
                 f"{o['trials']} | | |")
    broke = [t for t in report["trials"] if t.get("sim_unstable")]
    if broke:
        lines += ["", f"{len(broke)} episode(s) ended early, as failures, because the physics "
                      f"went unstable (MuJoCo resets the scene then): " + "; ".join(
                          f"{t['task']} trial {t['trial']} at step {t['steps']}: "
                          f"{t['sim_unstable']}" for t in broke[:5])]
    pressed = [t for t in report["trials"] if t.get("reflex_steps")]
    if pressed:
        lines += ["", f"{len(pressed)} episode(s) pressed the arm into the table or a fixture "
                      f"and were stopped by the sim's contact reflex "
                      f"({sum(t['reflex_steps'] for t in pressed)} steps in all)."]
    scored = [t for t in report["tasks"] if t.get("mean_score") is not None]
    if scored:
        lines += ["", "The env's own metric (each episode's best `score`, e.g. PushT's goal "
                      "coverage / 0.95 clipped to 1; mean over episodes):", "",
                  "| task | mean score | 95% CI |", "|---|---|---|"]
        lines += [f"| {t['task']} | {t['mean_score']:.3f} | {t['score_ci95'][0]:.3f}-"
                  f"{t['score_ci95'][1]:.3f} |" for t in scored]
    # single-skill tasks: the per-skill table would repeat the per-task one
    if report.get("skills") and any(t.get("plan_length", 1) > 1 for t in report["trials"]):
        lines += ["", "Per skill (every plan step an episode reached, over all tasks):", "",
                  "| skill | success | 95% CI | attempts |", "|---|---|---|---|"]
        for k in report["skills"]:
            lines.append(f"| {k['skill']} | {100 * k['success_rate']:.0f}% ({k['successes']}/"
                         f"{k['attempts']}) | {100 * k['ci95'][0]:.0f}-{100 * k['ci95'][1]:.0f}%"
                         f" | {k['attempts']} |")
    lat = report.get("latency") or {}
    if lat:
        lines += ["", f"Inference: {lat['chunks']} batched chunk predictions, p50 "
                      f"{lat['chunk_ms_p50']:.1f} ms, p99 {lat['chunk_ms_p99']:.1f} ms."]
    vids = [t for t in report["trials"] if t.get("video")]
    if vids:
        lines += ["", "## Videos", ""]
        lines += [f"- {t['task']} trial {t['trial']} ({'success' if t['success'] else 'fail'}): "
                  f"![]({Path(t['video']).relative_to(Path(t['video']).parents[1])})"
                  for t in vids]
    lines += ["", "![success rates](success.png)", ""]
    return "\n".join(lines)


def plot_success(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = report["tasks"]
    rates = [t["success_rate"] * 100 for t in tasks]
    err = np.array([[r - t["ci95"][0] * 100, t["ci95"][1] * 100 - r] for r, t in zip(rates, tasks)]).T
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(tasks) + 2), 3.5))
    ax.bar([t["task"] for t in tasks], rates, yerr=err, capsize=4, color="#4c72b0")
    ax.set_ylim(0, 105)
    ax.set_ylabel("success rate (%), 95% CI")
    ax.set_title(f"{report.get('policy_type', '')}: {report['protocol']['trials']} trials per task")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
