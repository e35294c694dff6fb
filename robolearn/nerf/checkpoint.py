"""Bridge checkpoints without pickles: safetensors for tensors, JSON for the rest.

``model.safetensors``  model weights + Adam moments (``optim/<group>/<param>/<key>``)
``frames.safetensors`` the train buffer (RGB, depth, poses, intrinsics, order) + eval frames
``state.json``         bridge config, step, counters, optimizer/scheduler scalars
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from robolearn.nerf.frames import Frame, Intrinsics

FORMAT = "robolearn-nerf-checkpoint/1"


def _optim_tensors(bridge) -> tuple[dict, dict]:
    tensors, scalars = {}, {}
    for name, opt in bridge.trainer.optimizers.optimizers.items():
        sd = opt.state_dict()
        scalars[name] = {"param_groups": [{k: v for k, v in g.items() if k != "params"}
                                          for g in sd["param_groups"]], "steps": {}}
        for idx, st in sd["state"].items():
            for key, val in st.items():
                if torch.is_tensor(val) and val.ndim > 0:
                    tensors[f"optim/{name}/{idx}/{key}"] = val.detach().cpu().contiguous()
                else:
                    scalars[name]["steps"][f"{idx}/{key}"] = float(val)
        sched = bridge.trainer.optimizers.schedulers.get(name)
        if sched is not None:
            scalars[name]["scheduler_last_epoch"] = int(sched.last_epoch)
    return tensors, scalars


def save_bridge(bridge, path: Path) -> Path:
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    weights = {f"model/{k}": v.detach().cpu().contiguous().clone()
               for k, v in bridge.model.state_dict().items()}
    opt_t, opt_s = _optim_tensors(bridge)
    save_file({**weights, **opt_t}, str(path / "model.safetensors"))
    b = bridge.buffer
    frames = {"rgb": b.rgb, "depth": b.depth, "c2w": b.c2w, "intr": b.intr, "stamp": b.stamp,
              "arrival": b.arrival}
    for i, f in enumerate(bridge.eval_frames):
        frames[f"eval/{i}/rgb"] = f.rgb
        frames[f"eval/{i}/c2w"] = f.c2w
        frames[f"eval/{i}/intr"] = np.array([*f.intrinsics.as_array(), f.timestamp])
        if f.depth is not None:
            frames[f"eval/{i}/depth"] = f.depth
    save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in frames.items()},
              str(path / "frames.safetensors"))
    state = {"format": FORMAT, "config": dataclasses.asdict(bridge.cfg), "step": bridge.step,
             "n_accepted": bridge.n_accepted, "n_rejected": bridge.n_rejected,
             "n_seen": b.n_seen, "n_evicted": b.n_evicted, "n_eval": len(bridge.eval_frames),
             "optimizers": opt_s}
    tmp = path / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path / "state.json")  # state.json last: its presence marks a complete save
    return path


def load_bridge(cls, path: Path, work_dir=None, **overrides):
    from safetensors.torch import load_file

    state_file = path / "state.json"
    if not state_file.is_file():
        raise FileNotFoundError(f"{path} holds no complete nerf checkpoint (state.json missing)")
    state = json.loads(state_file.read_text())
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown checkpoint format {state.get('format')!r}")
    from robolearn.nerf.config import NerfBridgeConfig

    cfg = NerfBridgeConfig.from_dict(state["config"])
    for k, v in overrides.items():
        setattr(cfg, k, v)
    bridge = cls(cfg, work_dir=work_dir)
    t = load_file(str(path / "model.safetensors"))
    bridge.model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model/")})
    for name, opt in bridge.trainer.optimizers.optimizers.items():
        sd = opt.state_dict()
        info = state["optimizers"].get(name, {})
        for idx in range(len(sd["param_groups"][0]["params"])):
            st = {key.split("/")[-1]: v for key, v in t.items()
                  if key.startswith(f"optim/{name}/{idx}/")}
            for key, v in info.get("steps", {}).items():
                i, k = key.split("/")
                if int(i) == idx:
                    st[k] = torch.tensor(v)
            if st:
                sd["state"][idx] = st
        opt.load_state_dict(sd)
        sched = bridge.trainer.optimizers.schedulers.get(name)
        if sched is not None and "scheduler_last_epoch" in info:
            sched.last_epoch = info["scheduler_last_epoch"]
    f = {k: v.numpy() for k, v in load_file(str(path / "frames.safetensors")).items()}
    b = bridge.buffer
    n = min(len(f["arrival"]), b.capacity)
    for name in ("rgb", "depth", "c2w", "intr", "stamp", "arrival"):
        getattr(b, name)[:n] = f[name][:n]
    b.n_seen, b.n_evicted = state["n_seen"], state["n_evicted"]
    for slot in np.flatnonzero(b.valid):
        bridge.dm.write_slot(int(slot), b.rgb[slot], bridge.to_nerf_pose(b.c2w[slot]), b.intr[slot])
    bridge._refresh_weights()
    for i in range(state["n_eval"]):
        intr = f[f"eval/{i}/intr"]
        k = Intrinsics(*map(float, intr[:4]), cfg.image_width, cfg.image_height)
        bridge.eval_frames.append(Frame(rgb=f[f"eval/{i}/rgb"], c2w=f[f"eval/{i}/c2w"],
                                        intrinsics=k, timestamp=float(intr[4]),
                                        depth=f.get(f"eval/{i}/depth")))
    bridge.step, bridge.n_accepted = state["step"], state["n_accepted"]
    bridge.n_rejected = state["n_rejected"]
    if bridge.step > 0:  # step-dependent model state (proposal-sampler annealing) as it was
        for where in (bridge._where.BEFORE_TRAIN_ITERATION, bridge._where.AFTER_TRAIN_ITERATION):
            for cb in bridge.trainer.callbacks:
                cb.run_callback_at_location(bridge.step - 1, location=where)
    return bridge
