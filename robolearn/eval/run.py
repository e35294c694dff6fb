"""Evaluate a policy over a protocol: every task, a report, and the trainer's evaluator."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)


@contextlib.contextmanager
def policy_overrides(policy, overrides: Mapping[str, Any]):
    """Set inference-time config fields of ``policy`` (its ``inference_keys``) for the
    duration of the block, then restore them (the trainer evaluates its live policy)."""
    if not overrides:  # nothing to set (duck-typed policies need no config.validate)
        yield
        return
    allowed = tuple(getattr(policy, "inference_keys", ()))
    bad = sorted(set(overrides) - set(allowed))
    if bad:
        raise ValueError(
            f"policy_overrides {bad} are not inference-time settings of {policy.name!r}; "
            f"allowed: {list(allowed) or 'none'} (anything else changes what the policy "
            "learned: retrain with policy.<key>=... instead)")
    c = policy.config
    saved = {k: getattr(c, k) for k in overrides}
    try:
        for k, v in overrides.items():
            setattr(c, k, _same_type(k, saved[k], v))
        c.validate()
        yield
    finally:
        for k, v in saved.items():
            setattr(c, k, v)


def _same_type(key: str, old: Any, value: Any) -> Any:
    """``value`` as the type of the setting it replaces; refuses lossy or odd conversions."""
    kind = type(old)
    if kind not in (bool, int, float):
        return value
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if (kind is bool and not isinstance(value, bool)) or (kind is not bool and not number) \
            or (kind is int and not float(value).is_integer()):
        raise ValueError(f"policy_overrides.{key}={value!r}: expected a {kind.__name__}")
    return kind(value)


def evaluate(policy, protocol, out_dir: str | Path | None = None, progress: bool = False,
             meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run every task of ``protocol`` with ``policy``; write the report into ``out_dir``
    (if given) and return it as a dict."""
    from robolearn.envs.assets import require_assets
    from robolearn.eval.report import build_report, write_report
    from robolearn.eval.rollout import evaluate_task

    protocol.validate()
    require_assets()
    policy.eval()
    c = policy.config
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=protocol.trials * len(protocol.tasks), desc="eval", unit="ep",
                   dynamic_ncols=True)
    t0 = time.perf_counter()
    results, ok = [], 0

    def on_trial(t):
        nonlocal ok
        ok += t.success
        if bar is not None:
            bar.update(1)
            bar.set_postfix(task=t.task, ok=ok)

    video_dir = Path(out_dir) / "videos" if out_dir is not None else None
    try:
        with policy_overrides(policy, dict(protocol.policy_overrides)):
            for task in protocol.tasks:
                results.append(evaluate_task(policy, task, protocol, video_dir, on_trial))
    finally:
        if bar is not None:
            bar.close()
    report = build_report(results, protocol, {
        "policy_type": policy.name, "horizon": c.horizon,
        "n_action_steps": protocol.n_action_steps or c.n_action_steps,
        "image_keys": list(c.image_keys), "device": str(policy.device),
        "wall_s": time.perf_counter() - t0, **(meta or {})})
    if out_dir is not None:
        report["files"] = {k: str(v) for k, v in write_report(report, out_dir).items()}
    return report


def sim_evaluator(protocol, run_dir: str | Path):
    """``evaluator(policy, step)`` for the trainer: success per task, a report per step."""

    def evaluator(policy, step: int) -> dict[str, float]:
        rep = evaluate(policy, protocol, Path(run_dir) / "eval" / f"step_{step:08d}",
                       meta={"step": step})
        out = {f"success/{t['task']}": t["success_rate"] for t in rep["tasks"]}
        out["success"] = rep["overall"]["success_rate"]
        log.info("step %d: sim success %s", step, out)
        return out

    return evaluator
