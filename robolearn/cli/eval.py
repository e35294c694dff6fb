"""``robolearn-eval``: roll a trained policy out in the sim under a fixed protocol.

    robolearn-eval checkpoint=runs/train/flow_vla                       # 50 PickPlace trials
    robolearn-eval checkpoint=RUN/checkpoints/step_00004000 trials=20 num_envs=2
    robolearn-eval --preset eval/primitives checkpoint=runs/train/multitask
    robolearn-eval checkpoint=RUN tasks=[metaworld/reach-v3,metaworld/push-v3]   # MetaWorld

``checkpoint`` is a run folder (its latest checkpoint), a ``checkpoints/step_*`` folder or a
policy folder; run and step folders use the EMA weights.  Writes ``report.json``,
``report.md``, ``success.png`` and rollout GIFs into ``out_dir``; the protocol (tasks,
seeds, trials, horizon, chunk execution, env) is recorded in the report.
"""

from __future__ import annotations

import sys


def _check_tasks(cfg) -> None:
    from robolearn.envs.backends import backends_for

    for b in backends_for(cfg.tasks):
        b.require()  # a clear install hint before any worker starts


def main(argv: list[str] | None = None) -> int:
    from robolearn.cli import checkpoint_cli

    got = checkpoint_cli("robolearn-eval", __doc__, "eval/default", "eval", argv, _check_tasks)
    if isinstance(got, int):
        return got
    cfg, path = got
    from robolearn.eval.run import evaluate
    from robolearn.policies.base import load_policy

    policy = load_policy(path, cfg.device)
    rep = evaluate(policy, cfg, cfg.out_dir, progress=cfg.progress,
                   meta={"checkpoint": str(path)})
    for t in rep["tasks"]:
        print(f"{t['task']}: {100 * t['success_rate']:.0f}% ({t['successes']}/{t['trials']}), "
              f"95% CI {100 * t['ci95'][0]:.0f}-{100 * t['ci95'][1]:.0f}%")
    lat = rep["latency"]
    if lat:
        print(f"chunk latency p50 {lat['chunk_ms_p50']:.1f} ms, p99 {lat['chunk_ms_p99']:.1f} ms")
    print(f"report: {rep['files']['md']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
