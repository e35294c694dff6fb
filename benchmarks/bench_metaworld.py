"""MetaWorld through robolearn's backend: expert success per task and env step speed.

For every task (default: MT10), MetaWorld's scripted expert runs through
:class:`robolearn.envs.metaworld.MetaWorldEnv` on ``--seeds`` task variants; printed per
task: success rate with a Wilson 95% interval (MetaWorld's own success flag), mean
episode length, and env steps/s next to raw MetaWorld (the same env class stepped
directly) in the same run, so the wrapper's cost is a ratio.

    python benchmarks/bench_metaworld.py --seeds 50 --json runs/bench_metaworld.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=None, help="env names (default: MT10)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--json", default="")
    args = ap.parse_args()

    from robolearn.envs.metaworld import MT10, MetaWorldEnv, expert_policy, rollout
    from robolearn.eval.report import wilson_interval

    rows = []
    for name in args.tasks or MT10:
        env = MetaWorldEnv("metaworld/" + name)
        ok, lengths = 0, []
        t0 = time.perf_counter()
        for seed in range(args.seeds):
            steps, meta = rollout(env, seed)
            ok += int(meta["success"])
            lengths.append(len(steps["action"]))
        wrapped = sum(lengths) / (time.perf_counter() - t0)
        # baseline: the raw MetaWorld env with the same expert on the same variants
        raw, pol, n = env._env, expert_policy(name), 0
        t0 = time.perf_counter()
        for seed in range(args.seeds):
            raw.set_task(env.variants[seed % len(env.variants)])
            obs, _ = raw.reset()
            for _ in range(lengths[seed]):
                obs, *_ = raw.step(np.clip(pol.get_action(obs), -1, 1))
                n += 1
        direct = n / (time.perf_counter() - t0)
        env.close()
        lo, hi = wilson_interval(ok, args.seeds)
        rows.append({"task": name, "successes": ok, "trials": args.seeds, "ci95": [lo, hi],
                     "mean_length": float(np.mean(lengths)), "steps_per_s": wrapped,
                     "raw_steps_per_s": direct, "ratio": wrapped / direct})
        print(f"{name:26s} expert {ok}/{args.seeds} (95% CI {100 * lo:.0f}-{100 * hi:.0f}%), "
              f"mean length {np.mean(lengths):.0f} steps, {wrapped:.0f} steps/s through "
              f"robolearn vs {direct:.0f} raw (x{wrapped / direct:.2f})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
