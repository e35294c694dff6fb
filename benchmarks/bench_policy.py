"""Policy inference and training speed on this machine.

Inference: latency per action chunk (p50/p99, batch 1) of flow_vla, with the prefix KV
cache reused across the Euler steps and, as the baseline in the same run, with the LM
recomputed over the prefix at every step; the speed-up is their p50 ratio.  Also the
control rate achievable with chunked execution (n_action_steps actions per chunk).
Training: samples/s of one optimiser step (forward + backward + AdamW) per policy.

    python benchmarks/bench_policy.py                     # tiny + default flow_vla
    python benchmarks/bench_policy.py --sizes default --iters 50 --cameras 2
    python benchmarks/bench_policy.py --train --train-batch 32
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from robolearn import keys as K
from robolearn.policies import get_config_class
from robolearn.policies.testing import synthetic_policy


def _build(name: str, size: str, cameras: int):
    cls = get_config_class(name)
    cfg = cls.tiny() if size == "tiny" else cls()
    return synthetic_policy(name, cfg, state_dim=7, action_dim=7,
                            cameras=["front", "wrist", "side"][:cameras], lengths=[40] * 4)


def _time(fn, iters: int, warmup: int = 2) -> np.ndarray:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return np.asarray(out) * 1000.0


def bench_inference(size: str, iters: int, cameras: int) -> dict:
    policy, ds = _build("flow_vla", size, cameras)
    policy.eval()
    obs = ds.batch(1)
    obs = {k: v for k, v in obs.items() if k != K.ACTION}
    res = {"config": size, "params_M": sum(p.numel() for p in policy.parameters()) / 1e6,
           "cameras": cameras, "euler_steps": policy.config.num_steps}
    # interleave the two modes so background load hits both alike
    cached, recomputed = [], []
    for _ in range(2):
        policy.predict_action_chunk(obs, use_kv_cache=True)
        policy.predict_action_chunk(obs, use_kv_cache=False)
    for _ in range(iters):
        cached.append(_time(lambda: policy.predict_action_chunk(obs, use_kv_cache=True), 1, 0)[0])
        recomputed.append(_time(lambda: policy.predict_action_chunk(obs, use_kv_cache=False), 1, 0)[0])
    c, r = np.asarray(cached), np.asarray(recomputed)
    p50 = float(np.percentile(c, 50))
    res.update(kv_cache_p50_ms=p50, kv_cache_p99_ms=float(np.percentile(c, 99)),
               recompute_p50_ms=float(np.percentile(r, 50)),
               recompute_p99_ms=float(np.percentile(r, 99)),
               kv_cache_speedup=float(np.percentile(r, 50) / p50),
               chunks_per_s=1000.0 / p50,
               control_rate_hz=1000.0 / p50 * policy.config.n_action_steps)
    return res


def bench_train(name: str, size: str, batch: int, iters: int, cameras: int) -> dict:
    policy, ds = _build(name, size, cameras)
    policy.train()
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    b = ds.batch(batch)

    def step():
        loss = policy(b)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    t = _time(step, iters)
    return {"policy": name, "config": size, "batch": batch,
            "params_M": sum(p.numel() for p in policy.parameters()) / 1e6,
            "step_p50_ms": float(np.percentile(t, 50)),
            "samples_per_s": batch / (float(np.percentile(t, 50)) / 1000.0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["tiny", "default"])
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--cameras", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (0 = torch default; 1 is steadiest on a shared 2-core box)")
    ap.add_argument("--train", action="store_true", help="also measure training samples/s")
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--policies", nargs="+", default=["bc", "diffusion", "flow_vla"])
    ap.add_argument("--json", default="", help="write the results to this file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = "cpu"
    print(f"device {dev}, torch threads {torch.get_num_threads()}, torch {torch.__version__}")
    results = {"inference": [], "train": []}
    for size in args.sizes:
        r = bench_inference(size, args.iters, args.cameras)
        results["inference"].append(r)
        print(f"flow_vla {size:7s} {r['params_M']:.2f}M params, {r['cameras']} cam, "
              f"{r['euler_steps']} Euler steps: chunk p50 {r['kv_cache_p50_ms']:.1f} ms, "
              f"p99 {r['kv_cache_p99_ms']:.1f} ms | recompute prefix p50 "
              f"{r['recompute_p50_ms']:.1f} ms -> KV-cache speed-up x{r['kv_cache_speedup']:.2f} "
              f"| control rate {r['control_rate_hz']:.0f} Hz with chunking")
    if args.train:
        for size in args.sizes:
            for name in args.policies:
                r = bench_train(name, size, args.train_batch, max(3, args.iters // 5),
                                args.cameras)
                results["train"].append(r)
                print(f"train {name:9s} {size:7s} {r['params_M']:.2f}M params, batch "
                      f"{r['batch']}: {r['step_p50_ms']:.0f} ms/step, "
                      f"{r['samples_per_s']:.1f} samples/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
