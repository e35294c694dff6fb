"""How far off is a flow_vla scene head, per object, where the grasp is decided?

``val_scene_err_cm`` (logged while training) is one mean over all objects and frames. This
breaks it down on a store collected with ``--scene-state`` (expert episodes of layouts the
checkpoints never trained on, e.g. ``robolearn-collect --preset collect/pickplace
--episodes 20 --seed 100000 --scene-state env.randomization.pose_jitter=0.03``):

* per cube, the median horizontal error (cm) over every step, and "near": the steps where
  the gripper is within 6 cm of the cube while it rests (where a grasp is decided);
* for the keypoint scene head on a store with ``observation.keypoints.<camera>``: the
  median error of its image points (pixels) per camera and object.

Every checkpoint given is measured on the same frames; the first is the baseline of the
printed ratios (its error / each one's).

    python benchmarks/scene_head_error.py --store unseen.zarr runs/pool runs/keypoints

Not one of `make bench`'s bench_*.py: it measures checkpoints you name.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

#: the tabletop scene state's object xyz triples, in order (robolearn.envs.tabletop_env)
OBJECTS = ("red", "green", "blue", "bowl", "pad")
NEAR_M = 0.06


def _frames(store, keys: list[str], limit: int) -> dict[str, np.ndarray]:
    n = store.n_steps if not limit else min(limit, store.n_steps)
    rows = np.sort(np.random.default_rng(0).choice(store.n_steps, n, replace=False))
    return {k: np.asarray(store.read(k))[rows] for k in keys}


def measure(policy, data: dict[str, np.ndarray], ee_index: int, batch: int = 128) -> dict:
    """Per-object errors of ``policy``'s scene head on ``data`` (store arrays, images HWC)."""
    import torch

    from robolearn import keys as K

    c = policy.config
    est, uv = [], []
    with torch.no_grad():
        for a in range(0, len(data[K.OBS_STATE]), batch):
            obs = {k: torch.as_tensor(data[k][a: a + batch]).permute(0, 3, 1, 2)
                   for k in c.image_keys}
            obs[K.OBS_STATE] = torch.as_tensor(data[K.OBS_STATE][a: a + batch])
            if c.scene_head == "keypoints":
                out = policy._keypoint_scene(obs, policy._current_state(obs))
                est.append(out["scene"])
                uv.append(out["points"]["uv"].numpy())
            else:
                est.append(policy.scene_estimate(obs))
    est = policy.scene_norm.unnormalize(K.OBS_ENV_STATE, torch.cat(est)).numpy()
    true = data[K.OBS_ENV_STATE]
    ee = data[K.OBS_STATE][:, ee_index: ee_index + 2]
    res: dict = {"frames": len(true)}
    for o, name in enumerate(OBJECTS[: true.shape[1] // 3]):
        xy = slice(3 * o, 3 * o + 2)
        err = np.linalg.norm(est[:, xy] - true[:, xy], axis=1) * 100
        row = {"all_cm": round(float(np.median(err)), 2)}
        if o < 3:  # cubes: near the gripper while resting on the table
            z = true[:, 3 * o + 2]
            near = (np.linalg.norm(true[:, xy] - ee, axis=1) < NEAR_M) & (z < z.min() + 0.005)
            if near.any():
                row["near_cm"] = round(float(np.median(err[near])), 2)
                row["near_n"] = int(near.sum())
        res[name] = row
    if uv:
        uv = np.concatenate(uv)
        for ci, key in enumerate(c.image_keys):
            cam = K.camera_name(key)
            lab = data.get(K.keypoints_key(cam))
            if lab is None:
                continue
            px = []
            for p in range(lab.shape[1]):
                seen = lab[:, p, 2] > 0.5
                d = np.linalg.norm(uv[seen, ci, p] - lab[seen, p, :2], axis=1) * c.image_size
                px.append(round(float(np.median(d)), 2) if seen.any() else None)
            res[f"points_px_{cam}"] = px  # objects in order, then the end effector
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="flow_vla runs or policy folders with a "
                    "scene head (the first is the baseline)")
    ap.add_argument("--store", required=True, help="expert episodes with --scene-state")
    ap.add_argument("--frames", type=int, default=0, help="random frames to use (0: all)")
    ap.add_argument("--ee-index", type=int, default=8,
                    help="the end effector's x in observation.state (8: Panda tabletop)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    from robolearn import keys as K
    from robolearn.data.store import TrajectoryStore
    from robolearn.policies.base import load_policy

    torch.set_num_threads(args.threads)
    store = TrajectoryStore.open(args.store)
    if K.OBS_ENV_STATE not in store.schema:
        raise SystemExit(f"error: {args.store} has no {K.OBS_ENV_STATE}: collect it with "
                         "robolearn-collect --scene-state")
    policies = {path: load_policy(path) for path in args.checkpoints}
    keys = {K.OBS_STATE, K.OBS_ENV_STATE}
    for path, policy in policies.items():
        policy.eval()
        if policy.scene_head is None:
            raise SystemExit(f"error: {path} has no scene head (policy.scene_aux_weight=0)")
        cams = policy.config.image_keys
        keys |= {k for k in (*cams, *(K.keypoints_key(K.camera_name(i)) for i in cams))
                 if k in store.schema}
    data = _frames(store, sorted(keys), args.frames)  # read once, the same frames for all
    rows = [{"checkpoint": path, "scene_head": p.config.scene_head,
             **measure(p, data, args.ee_index)} for path, p in policies.items()]
    base = rows[0]
    print(f"scene head error on {args.store} ({base['frames']} frames), median horizontal cm "
          f"per cube (every step / near the gripper); ratio = baseline's error / this one's")
    print("| checkpoint | head | " + " | ".join(OBJECTS[:3]) + " | ratio (every step) |")
    print("|---|---|" + "---|" * 4)
    for r in rows:
        cells = [f"{r[o]['all_cm']} / {r[o].get('near_cm', '-')}" for o in OBJECTS[:3]]
        ratio = np.mean([base[o]["all_cm"] / max(r[o]["all_cm"], 1e-6) for o in OBJECTS[:3]])
        print(f"| {r['checkpoint']} | {r['scene_head']} | " + " | ".join(cells) +
              f" | x{ratio:.2f} |")
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
