"""LeRobot's own writer and reader, for the converter tests (runs in .venv-lerobot).

``lerobot`` does not install beside this stack (DESIGN.md §4); the standalone
``lerobot-dataset`` package (LeRobot's dataset code, module ``ledataset``) does, in its own
venv (``make lerobot-venv``). The tests call this script there:

    python tests/data/lerobot_reference.py write ROOT --episodes 3 [--images]
        record a small dataset with LeRobotDataset.create/add_frame/save_episode/finalize and
        save the exact arrays it was given to ROOT.npz
    python tests/data/lerobot_reference.py read ROOT OUT.npz
        load ROOT with LeRobotDataset (its Parquet + video decoding) and save every frame
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

TASKS = ["pick up the red cube", "open the drawer", "put the cube in the bowl"]
SKILLS = ["reach", "grasp", "lift"]


def write(root: str, episodes: int, images: bool, size: int, seed: int) -> None:
    from ledataset.datasets.lerobot_dataset import LeRobotDataset

    cam = {"dtype": "image" if images else "video", "shape": (size, size, 3),
           "names": ["height", "width", "channels"]}
    features = {
        "observation.state": {"dtype": "float32", "shape": (7,), "names": [f"joint{i}" for i in range(6)] + ["gripper"]},
        "action": {"dtype": "float32", "shape": (7,), "names": [f"joint{i}" for i in range(6)] + ["gripper"]},
        "observation.environment_state": {"dtype": "float32", "shape": (3,), "names": ["x", "y", "z"]},
        "observation.images.front": cam,
        "observation.images.wrist": dict(cam),
        "next.reward": {"dtype": "float32", "shape": (1,), "names": None},
        "next.done": {"dtype": "bool", "shape": (1,), "names": None},
        "skill": {"dtype": "string", "shape": (1,), "names": None},
    }
    ds = LeRobotDataset.create("robolearn/reference", fps=10, features=features, root=root,
                               robot_type="so100", use_videos=not images)
    rng = np.random.default_rng(seed)
    rec: dict[str, list] = {k: [] for k in ["state", "action", "env", "front", "wrist", "reward",
                                            "done", "task", "skill", "episode"]}
    yy, xx = np.mgrid[0:size, 0:size]
    for ep in range(episodes):
        n = 6 + 3 * ep
        task = TASKS[ep % len(TASKS)]
        for i in range(n):
            # smooth images (gradients + a moving square): what a camera sees, codec-friendly
            front = np.stack([(xx * 4 + i * 8) % 256, (yy * 4) % 256,
                              np.full_like(xx, 40 * ep)], -1).astype(np.uint8)
            front[10 + i % 20: 20 + i % 20, 12:22] = 255
            wrist = np.stack([(yy * 3 + i * 5) % 256, np.full_like(xx, 128),
                              (xx * 2) % 256], -1).astype(np.uint8)
            frame = {"observation.state": rng.normal(size=7).astype(np.float32),
                     "action": rng.normal(size=7).astype(np.float32),
                     "observation.environment_state": rng.normal(size=3).astype(np.float32),
                     "observation.images.front": front, "observation.images.wrist": wrist,
                     "next.reward": np.array([float(i == n - 1)], np.float32),
                     "next.done": np.array([i == n - 1]),
                     "skill": SKILLS[min(i * 3 // n, 2)], "task": task}
            for k, src in [("state", "observation.state"), ("action", "action"),
                           ("env", "observation.environment_state"),
                           ("front", "observation.images.front"),
                           ("wrist", "observation.images.wrist")]:
                rec[k].append(frame[src])
            rec["reward"].append(frame["next.reward"][0])
            rec["done"].append(frame["next.done"][0])
            rec["task"].append(task)
            rec["skill"].append(frame["skill"])
            rec["episode"].append(ep)
            ds.add_frame(frame)
        ds.save_episode()
    ds.finalize()
    np.savez(root.rstrip("/") + ".npz", **{k: np.asarray(v) for k, v in rec.items()})


def _decode_pyav(video_path, timestamps, tolerance_s, backend=None):
    """LeRobot's decoder contract (frames at ``timestamps`` within ``tolerance_s``, float CHW
    in [0, 1]) with PyAV. LeRobot's own decoders do not run on this machine: torchcodec's PyPI
    wheels link CUDA libraries, and torchvision 0.28 (the one beside CPU torch 2.13) dropped
    the ``VideoReader`` its "pyav" backend calls. Everything else on the read path is LeRobot's."""
    import av
    import torch

    with av.open(str(video_path)) as c:
        stream = c.streams.video[0]
        frames = [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in c.decode(stream)]
    ts = np.array([t for t, _ in frames])
    out = []
    for want in timestamps:
        i = int(np.argmin(np.abs(ts - want)))
        if abs(ts[i] - want) > tolerance_s:
            raise AssertionError(f"no frame within {tolerance_s}s of {want}s in {video_path} "
                                 f"(closest {ts[i]}s): violates LeRobot's tolerance")
        out.append(frames[i][1])
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0


def read(root: str, out: str) -> None:
    import ledataset.datasets.lerobot_dataset as lerobot_dataset
    from ledataset.datasets.lerobot_dataset import LeRobotDataset

    lerobot_dataset.decode_video_frames = _decode_pyav
    ds = LeRobotDataset("robolearn/reference", root=root)
    cams = [k for k in ds.meta.features if k.startswith("observation.images.")]
    rec: dict[str, list] = {}
    for i in range(len(ds)):
        item = ds[i]
        for k, v in item.items():
            if k in cams:  # float CHW in [0, 1] -> uint8 HWC
                v = (v.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            elif hasattr(v, "numpy"):
                v = v.numpy()
            rec.setdefault(k, []).append(v)
    arrays = {k: np.asarray(v) for k, v in rec.items()}
    arrays["_meta"] = np.asarray(json.dumps({
        "fps": ds.meta.fps, "robot_type": ds.meta.robot_type, "total_episodes": ds.meta.total_episodes,
        "features": {k: {"dtype": f["dtype"], "shape": list(f["shape"]), "names": f.get("names")}
                     for k, f in ds.meta.features.items()},
        "tasks": list(ds.meta.tasks.index)}))
    np.savez(out, **arrays)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("root")
    w.add_argument("--episodes", type=int, default=3)
    w.add_argument("--images", action="store_true", help="PNG image features instead of video")
    w.add_argument("--size", type=int, default=64)
    w.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("read")
    r.add_argument("root")
    r.add_argument("out")
    a = ap.parse_args(argv)
    if a.cmd == "write":
        write(a.root, a.episodes, a.images, a.size, a.seed)
    else:
        read(a.root, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
