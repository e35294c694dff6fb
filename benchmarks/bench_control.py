"""Real-time chunking vs synchronous chunk execution, with a real policy on this CPU.

A control loop ticks at ``--hz`` for ``--seconds``. *Synchronous* execution (what a
naive node does) runs inference in the loop whenever the chunk queue is empty, so those
ticks arrive late by the inference time. *Real-time chunking* (robolearn.control, what
``policy_node`` does) infers the next chunk in a background thread while the current one
executes. Printed: tick lateness p50/p99/max for both, their p99 ratio, starved ticks;
then, for real-time chunking with and without cross-fading (``--blend`` ticks vs a hard
switch), the largest joint-velocity discontinuity at chunk seams (max |v_t - v_{t-1}| over
the arm joints within the seam window, rad/s) next to the largest within a chunk.

With random weights the chunks are noise; give a trained checkpoint and a store to read one
real observation from for meaningful seam numbers:

    python benchmarks/bench_control.py --policy flow_vla --hz 10 --seconds 20
    python benchmarks/bench_control.py --checkpoint runs/train/flow_vla --store demos.zarr
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from robolearn import keys as K
from robolearn.control import RealTimeChunker
from robolearn.policies.testing import synthetic_policy


def build(name: str):
    pol, ds = synthetic_policy(name, cameras=["front", "wrist"], lengths=[40] * 4)
    pol.eval()
    obs = {k: v[:1] for k, v in ds.batch(1).items() if k != K.ACTION}
    return pol, obs


def load(checkpoint: str, store: str):
    """A trained policy and the first observation window of the store's first episode."""
    from robolearn.control.window import window_batch
    from robolearn.data.store import TrajectoryStore
    from robolearn.policies.base import load_policy, resolve_policy_dir

    pol = load_policy(resolve_policy_dir(checkpoint)).eval()
    st = TrajectoryStore.open(store)
    i = st.episode_slice(0).start
    step = {K.OBS_STATE: st.array(K.OBS_STATE)[i]}
    for key in pol.config.image_keys:
        step[key] = np.moveaxis(st.array(key)[i], -1, 0)
    lang = str(st.array(K.LANGUAGE)[i]) if K.LANGUAGE in st.keys else ""
    st.close()
    return pol, window_batch([[step]], pol.config.n_obs, [lang])


def seam_jumps(actions: np.ndarray, seams: list[int], hz: float, blend: int, n_arm: int):
    """(max velocity jump in seam windows, max elsewhere), rad/s, over the arm joints."""
    v = np.diff(actions[:, :n_arm], axis=0) * hz
    dv = np.abs(np.diff(v, axis=0)).max(axis=1)  # dv[k]: change between steps k->k+1, k+1->k+2
    at_seam = np.zeros(len(dv), bool)
    for s in seams:  # action index s is the first from a new chunk
        at_seam[max(0, s - 2): s + max(blend, 1)] = True
    seam = float(dv[at_seam].max()) if at_seam.any() else 0.0
    inside = float(dv[~at_seam].max()) if (~at_seam).any() else 0.0
    return seam, inside


def run(pol, obs, hz: float, seconds: float, realtime: bool, blend: int):
    c = pol.config
    ch = RealTimeChunker(c.horizon, c.n_action_steps, blend)
    pool = ThreadPoolExecutor(max_workers=1)
    dt, n = 1.0 / hz, int(seconds * hz)
    late, actions, seams = [], [], []
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
                seams.append(len(actions))
                fut = None
            if fut is None and ch.needs_chunk(tick):
                fut, fut_tick = pool.submit(infer), tick
        elif ch.remaining(tick) == 0:  # synchronous: stop and infer
            ch.plan.clear()
            ch.add_chunk(infer()[: c.n_action_steps], tick, tick)
            seams.append(len(actions))
        a = ch.pop(tick)
        if a is not None:
            actions.append(a)
    pool.shutdown()
    return np.asarray(late), ch.stats, np.stack(actions), seams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", default="flow_vla")
    ap.add_argument("--hz", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--blend", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoint", default="", help="trained policy (run/step/policy folder)")
    ap.add_argument("--store", default="", help="store to take the observation from")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if bool(args.checkpoint) != bool(args.store):
        ap.error("--checkpoint and --store go together")
    pol, obs = load(args.checkpoint, args.store) if args.checkpoint else build(args.policy)
    n_arm = pol.config.action_dim - 1  # joints + gripper
    for _ in range(2):
        with torch.no_grad():
            pol.predict_action_chunk(obs)
    res = {}
    for mode in ("synchronous", "realtime"):
        late, stats, _, _ = run(pol, obs, args.hz, args.seconds, mode == "realtime", args.blend)
        res[mode] = late
        print(f"{mode:12s} tick lateness p50 {np.percentile(late, 50):7.1f} ms  p99 "
              f"{np.percentile(late, 99):7.1f} ms  max {late.max():7.1f} ms  chunks "
              f"{stats.chunks}  starved {stats.starved_ticks}  dropped {stats.dropped_actions}")
    r = (np.percentile(res["synchronous"], 99) + 1e-3) / (np.percentile(res["realtime"], 99) + 1e-3)
    print(f"p99 tick lateness, synchronous / real-time chunking: {r:.1f}x at {args.hz:g} Hz "
          f"({pol.name}, {args.threads} torch thread(s))")
    jumps = {}
    for blend in (args.blend, 0):
        _, _, acts, seams = run(pol, obs, args.hz, args.seconds, True, blend)
        jumps[blend] = seam_jumps(acts, seams, args.hz, blend, n_arm)
        print(f"real-time, {'blend ' + str(blend) + ' ticks' if blend else 'hard switch':14s} "
              f"max joint-velocity jump at seams {jumps[blend][0]:.3f} rad/s, within chunks "
              f"{jumps[blend][1]:.3f} rad/s ({len(seams)} seams)")
    print(f"seam velocity jump, hard switch / blended: "
          f"{jumps[0][0] / max(jumps[args.blend][0], 1e-9):.2f}x")


if __name__ == "__main__":
    main()
