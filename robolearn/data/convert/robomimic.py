"""robomimic / robosuite HDF5 -> robolearn store.

robomimic layout::

    data/                attrs: total, env_args (JSON: env_name, env_kwargs{robots, control_freq})
      demo_<i>/          attrs: num_samples
        actions (N, A)   rewards (N,)   dones (N,)   states (N, S)
        obs/<key>        low-dim (N, d) or images (N, H, W, 3) uint8 (keys ending in _image)
        next_obs/<key>
    mask/<name>          demo names per split (optional)

``observation.state`` is the concatenation of ``state_keys`` (default: the robot's
end-effector pose and gripper, robomimic's standard low-dim set, plus ``object`` when
present); every ``*_image`` key becomes a camera (``agentview_image`` -> ``agentview``).
``states`` (simulator states) and ``next_obs`` are not converted (they are reported).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from robolearn import keys as K
from robolearn.data.convert import ConvertReport, append_or_drop, finish, resize_frames
from robolearn.data.errors import StoreError

DEFAULT_STATE_KEYS = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object")


def _demo_order(names) -> list[str]:
    def key(n: str):
        m = re.search(r"(\d+)$", n)
        return (int(m.group(1)) if m else -1, n)
    return sorted(names, key=key)


def _episode(demo, skeys, cams, image_size, instruction, task, robot, fps, action_space, source):
    """(steps, meta) of one robomimic demo group."""
    obs = demo["obs"]
    n = int(demo["actions"].shape[0])
    steps = {
        K.OBS_STATE: np.concatenate([np.asarray(obs[k], np.float32).reshape(n, -1)
                                     for k in skeys], axis=1),
        K.ACTION: np.asarray(demo["actions"], np.float32),
        K.REWARD: np.asarray(demo["rewards"], np.float32) if "rewards" in demo
        else np.zeros(n, np.float32),
        K.DONE: np.asarray(demo["dones"], bool) if "dones" in demo else np.arange(n) == n - 1,
        K.LANGUAGE: instruction, K.SKILL: task,
    }
    for cam in cams:
        steps[K.image_key(cam[: -len("_image")])] = resize_frames(np.asarray(obs[cam]), image_size)
    success = bool(steps[K.DONE].any() or steps[K.REWARD].max(initial=0) > 0)
    meta = {K.META_TASK: task, K.META_INSTRUCTION: instruction, K.META_SUCCESS: success,
            K.META_ROBOT: robot, K.META_FPS: fps, K.META_ACTION_SPACE: action_space,
            K.META_SOURCE: source}
    return steps, meta


def convert_robomimic(src: str, dst: str, *, state_keys: Sequence[str] | None = None,
                      image_size: int | None = None, instruction: str | None = None,
                      task: str | None = None, filter_key: str | None = None,
                      progress: bool = True, storage_options=None) -> ConvertReport:
    """Convert a robomimic HDF5 file; one demo at a time (memory: one episode)."""
    import h5py

    from robolearn.data.store import TrajectoryStore

    path = Path(src)
    if not path.exists():
        raise FileNotFoundError(f"no HDF5 file at {src}")
    report = ConvertReport(source=str(src), store=str(dst))
    t0 = time.perf_counter()
    with h5py.File(path, "r") as f:
        if "data" not in f:
            raise StoreError(f"{src} has no 'data' group: not a robomimic file")
        data = f["data"]
        env_args = json.loads(data.attrs.get("env_args", "{}") or "{}")
        env_kwargs = env_args.get("env_kwargs", {})
        robots = env_kwargs.get("robots", "unknown")
        robot = robots[0] if isinstance(robots, list) and robots else str(robots)
        fps = float(env_kwargs.get("control_freq", 20))
        task = task or env_args.get("env_name", path.stem)
        instruction = instruction or task
        ctrl = env_kwargs.get("controller_configs", {}) or {}
        action_space = str(ctrl.get("type", "robomimic")).lower()
        names = _demo_order(data.keys())
        if filter_key:
            if "mask" not in f or filter_key not in f["mask"]:
                raise KeyError(f"{src} has no mask/{filter_key}; masks: "
                               f"{list(f['mask'].keys()) if 'mask' in f else []}")
            keep = {n.decode() if isinstance(n, bytes) else str(n) for n in f["mask"][filter_key][:]}
            names = [n for n in names if n in keep]
        if not names:
            raise StoreError(f"{src} has no demos to convert")
        first_obs = data[names[0]]["obs"]
        skeys = [k for k in (state_keys or DEFAULT_STATE_KEYS) if k in first_obs]
        if state_keys and len(skeys) != len(state_keys):
            missing = sorted(set(state_keys) - set(skeys))
            raise KeyError(f"state keys {missing} not in {src}; obs keys: {list(first_obs)}")
        if not skeys:
            raise KeyError(f"none of {list(DEFAULT_STATE_KEYS)} in {src}; pass state_keys from "
                           f"{list(first_obs)}")
        cams = [k for k in first_obs if k.endswith("_image")]
        report.dropped_keys = sorted(
            {f"obs/{k}" for k in first_obs if k not in skeys and k not in cams}
            | {k for k in ("states", "next_obs") if k in data[names[0]]})
        report.notes.append(f"observation.state = concat({', '.join(skeys)})")

        store = TrajectoryStore.create(dst, storage_options=storage_options)
        it = names
        if progress:
            from tqdm import tqdm

            it = tqdm(names, desc=f"robomimic -> {Path(str(dst)).name}", unit="demo")
        for name in it:
            append_or_drop(store, report, name, lambda: _episode(
                data[name], skeys, cams, image_size, instruction, task, robot, fps, action_space,
                f"robomimic:{path.name}/{name}"))
        store.close()
    report.frames_per_s = report.steps / max(1e-9, time.perf_counter() - t0)
    return finish(report, storage_options)
