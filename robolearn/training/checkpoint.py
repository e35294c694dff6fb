"""Resumable checkpoints without pickles: safetensors for tensors, JSON for everything else.

Layout of ``<run>/checkpoints/step_XXXXXXXX/``::

    policy/                  save_pretrained folder with the raw weights (config, stats)
    policy_ema/              the same with EMA weights - the one to deploy (if EMA is on)
    training_state.safetensors   optimiser moments, EMA shadow, torch RNG states
    training_state.json          step, optimiser hyper-params, scheduler, numpy/python RNG

A checkpoint is written into a temporary folder and renamed into place, then
``checkpoints/latest`` (a one-line text file) is replaced: a crash mid-save leaves the
previous checkpoint intact and ``latest`` pointing at it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

CKPT_DIR = "checkpoints"
LATEST = "latest"
STATE_TENSORS = "training_state.safetensors"
STATE_JSON = "training_state.json"


def _flatten_optimizer(sd: dict) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for name, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim/{pid}/{name}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}/{name}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("optim/"):
            _, pid, name = k.split("/", 2)
            state.setdefault(int(pid), {})[name] = v
    for k, v in meta["scalars"].items():
        pid, name = k.split("/", 1)
        state.setdefault(int(pid), {})[name] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """This process's RNG states: torch (CPU + CUDA) as tensors, numpy/python as JSON."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    np_state = np.random.get_state()
    js = {"numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]),
                    float(np_state[4])],
          "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]]}
    return tensors, js


def set_rng_state(tensors: dict[str, torch.Tensor], js: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng/torch"])
    if torch.cuda.is_available():
        n = sum(1 for k in tensors if k.startswith("rng/cuda/"))
        if n:
            torch.cuda.set_rng_state_all([tensors[f"rng/cuda/{i}"] for i in range(n)])
    a = js["numpy"]
    np.random.set_state((a[0], np.asarray(a[1], dtype=np.uint32), a[2], a[3], a[4]))
    p = js["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


def save_checkpoint(run_dir: str | Path, step: int, policy, optimizer, scheduler, ema=None,
                    scaler=None, rank_rng: list | None = None, extra: dict | None = None,
                    keep_last: int = 3) -> Path:
    """Write a resumable checkpoint at ``step`` (call on rank 0 only)."""
    from safetensors.torch import save_file

    root = Path(run_dir) / CKPT_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp_step_{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    # 1. inference-ready policy folders (raw and EMA weights)
    policy.save_pretrained(tmp / "policy")
    if ema is not None:
        policy.save_pretrained(tmp / "policy_ema", state_dict=ema.model_state_dict(policy))
    # 2. training state: tensors -> safetensors, the rest -> JSON
    tensors, optim_meta = _flatten_optimizer(optimizer.state_dict())
    if ema is not None:
        tensors.update({f"ema/{k}": v.cpu().contiguous() for k, v in ema.state_dict().items()})
    rank_rng = rank_rng or [rng_state()]
    rng_json = []
    for r, (t, js) in enumerate(rank_rng):
        tensors.update({f"rank{r}/{k}": v.cpu().contiguous() for k, v in t.items()})
        rng_json.append(js)
    save_file({k: v.clone() for k, v in tensors.items()}, str(tmp / STATE_TENSORS))
    meta = {"step": step, "optimizer": optim_meta, "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None, "rng": rng_json,
            "world_size": len(rank_rng), **(extra or {})}
    (tmp / STATE_JSON).write_text(json.dumps(meta, default=_json_default))
    # 3. commit: rename the folder, then point `latest` at it
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _write_atomic(root / LATEST, final.name + "\n")
    _prune(root, keep_last)
    return final


def _json_default(o):
    if torch.is_tensor(o):
        return o.item() if o.numel() == 1 else o.tolist()
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    raise TypeError(f"cannot store {type(o).__name__} in a checkpoint's JSON")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _prune(root: Path, keep_last: int) -> None:
    if keep_last <= 0:
        return
    ckpts = sorted(p for p in root.glob("step_*") if p.is_dir())
    for p in ckpts[:-keep_last]:
        shutil.rmtree(p, ignore_errors=True)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    root = Path(run_dir) / CKPT_DIR
    f = root / LATEST
    if not f.is_file():
        return None
    p = root / f.read_text().strip()
    return p if p.is_dir() else None


def load_training_state(ckpt: str | Path, policy, optimizer, scheduler, ema=None, scaler=None,
                        rank: int = 0) -> int:
    """Restore weights, optimiser, scheduler, EMA, scaler and this rank's RNG; return the step."""
    from safetensors.torch import load_file

    ckpt = Path(ckpt)
    policy.load_state_dict(load_file(str(ckpt / "policy" / "model.safetensors")), strict=True)
    tensors = load_file(str(ckpt / STATE_TENSORS))
    meta = json.loads((ckpt / STATE_JSON).read_text())
    optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
    scheduler.load_state_dict(meta["scheduler"])
    if ema is not None:
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema/")})
    if scaler is not None and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    r = min(rank, meta["world_size"] - 1)
    prefix = f"rank{r}/"
    set_rng_state({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)},
                  meta["rng"][r])
    return int(meta["step"])
