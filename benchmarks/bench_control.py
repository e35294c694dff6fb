"""Real-time chunking vs synchronous chunk execution, with a real policy on this CPU.

A control loop ticks at ``--hz`` for ``--seconds``. *Synchronous* execution (what a
naive node does) runs inference in the loop whenever the chunk queue is empty, so those
ticks arrive late by the inference time. *Real-time chunking* (robolearn.control, what
``policy_node`` does) infers the next chunk in a background thread while the current one
executes. Printed: tick lateness p50/p99/max for both, their p99 ratio, starved ticks,
and the largest action change at chunk seams (blended vs hard switch).

    python benchmarks/bench_control.py --policy flow_vla --hz 10 --seconds 20
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from robolearn import keys as K
from robolearn.control import RealTimeChunker
from robolearn.policies import get_config_class, get_policy_class
from robolearn.policies.testing import SyntheticWindowDataset


def build(name: str):
    cfg = get_config_class(name)()
    ds = SyntheticWindowDataset(n_episodes=4, lengths=[40] * 4, state_dim=15, action_dim=8,
                                cameras=["front", "wrist"], image_size=cfg.image_size,
                                n_obs=cfg.n_obs, horizon=cfg.horizon)
    cfg.resolve_features(ds.stats(), ds.image_keys)
    torch.manual_seed(0)
    pol = get_policy_class(name)(cfg, ds.stats()).eval()
    obs = {k: v[:1] for k, v in ds.batch(1).items() if k != K.ACTION}
    return pol, obs


def run(pol, obs, hz: float, seconds: float, realtime: bool, blend: int):
    c = pol.config
    ch = RealTimeChunker(c.horizon, c.n_action_steps, blend)
    pool = ThreadPoolExecutor(max_workers=1)
    dt, n = 1.0 / hz, int(seconds * hz)
    late, actions = [], []
    fut, fut_tick = None, 0

    def infer():
        with torch.no_grad():
            return pol.predict_action_chunk(obs)[0].numpy()

    t0 = time.perf_counter()
    for tick in range(n):
        due = t0 + tick * dt
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        late.append(max(0.0, time.perf_counter() - due) * 1000)
        if realtime:
            if fut is not None and fut.done():
                ch.add_chunk(fut.result(), fut_tick, tick)
                fut = None
            if fut is None and ch.needs_chunk(tick):
                fut, fut_tick = pool.submit(infer), tick
        elif ch.remaining(tick) == 0:  # synchronous: stop and infer
            ch.plan.clear()
            ch.add_chunk(infer()[: c.n_action_steps], tick, tick)
        a = ch.pop(tick)
        if a is not None:
            actions.append(a)
    pool.shutdown()
    a = np.stack(actions)
    return np.asarray(late), ch.stats, float(np.abs(np.diff(a, axis=0)).max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", default="flow_vla")
    ap.add_argument("--hz", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--blend", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pol, obs = build(args.policy)
    for _ in range(2):
        with torch.no_grad():
            pol.predict_action_chunk(obs)
    res = {}
    for mode in ("synchronous", "realtime"):
        late, stats, jump = run(pol, obs, args.hz, args.seconds, mode == "realtime", args.blend)
        res[mode] = late
        print(f"{mode:12s} tick lateness p50 {np.percentile(late, 50):7.1f} ms  p99 "
              f"{np.percentile(late, 99):7.1f} ms  max {late.max():7.1f} ms  chunks "
              f"{stats.chunks}  starved {stats.starved_ticks}  dropped {stats.dropped_actions}  "
              f"max action step {jump:.3f}")
    r = (np.percentile(res["synchronous"], 99) + 1e-3) / (np.percentile(res["realtime"], 99) + 1e-3)
    print(f"p99 tick lateness, synchronous / real-time chunking: {r:.1f}x at {args.hz:g} Hz "
          f"({args.policy}, {args.threads} torch thread(s))")


if __name__ == "__main__":
    main()
