"""DDP scaling of robolearn-train: the same global batch on 1 process vs N torchrun processes.

Trains a policy for a fixed number of steps on a store (default: a small synthetic store
of 96 px two-camera episodes written here) once as one process (all cores) and once as
``--nproc`` gloo processes (cores split between them), and prints training samples/s of
both and their ratio (the scaling), measured by the trainer itself (``metrics.csv``,
checkpoint time excluded), in one run.

    python benchmarks/bench_ddp.py --policy flow_vla --steps 40
    python benchmarks/bench_ddp.py --store demos.zarr --policy bc --nproc 2
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def synthetic_store(path: Path, episodes: int = 8, length: int = 40) -> str:
    from robolearn import keys as K
    from robolearn.data.store import TrajectoryStore

    rng = np.random.default_rng(0)
    st = TrajectoryStore.create(path)
    for _ in range(episodes):
        n = length
        st.append_episode(
            {K.OBS_STATE: rng.normal(size=(n, 15)).astype(np.float32),
             K.ACTION: rng.normal(size=(n, 8)).astype(np.float32),
             K.REWARD: np.zeros(n, np.float32), K.DONE: np.arange(n) == n - 1,
             K.image_key("front"): rng.integers(0, 255, (n, 96, 96, 3), dtype=np.uint8),
             K.image_key("wrist"): rng.integers(0, 255, (n, 96, 96, 3), dtype=np.uint8),
             K.LANGUAGE: "pick up the red block", K.SKILL: "pick"},
            {K.META_TASK: "PickPlace", K.META_INSTRUCTION: "pick up the red block",
             K.META_SUCCESS: True, K.META_ROBOT: "panda", K.META_FPS: 10,
             K.META_ACTION_SPACE: "joint_pos", K.META_SOURCE: "bench"})
    st.close()
    return str(path)


def run(nproc: int, store: str, policy: str, steps: int, batch: int, out: Path) -> float:
    args = [f"train/{policy}", f"data.store={store}", f"out_dir={out}", f"steps={steps}",
            f"data.batch_size={batch}", "data.val_ratio=0", "val_every=0", "save_every=100000",
            "log_every=10", "progress=false", "optim.warmup_steps=5"]
    env = dict(os.environ)
    if nproc == 1:
        cmd = [sys.executable, "-m", "robolearn.cli.train", *args]
    else:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 2) // nproc))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "robolearn.cli.train", *args]
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    sps = [float(r["samples_per_s"]) for r in rows if r.get("samples_per_s")][1:]  # no warm-up
    return float(np.median(sps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default="")
    ap.add_argument("--policy", default="flow_vla")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=32, help="global batch")
    ap.add_argument("--nproc", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_ddp_"))
    store = args.store or synthetic_store(tmp / "demos.zarr")
    one = run(1, store, args.policy, args.steps, args.batch, tmp / "one")
    many = run(args.nproc, store, args.policy, args.steps, args.batch, tmp / "ddp")
    print(f"{args.policy}, global batch {args.batch}, {os.cpu_count()} cores: 1 process "
          f"{one:.1f} samples/s, {args.nproc} DDP processes {many:.1f} samples/s -> scaling "
          f"x{many / one:.2f}")


if __name__ == "__main__":
    main()
