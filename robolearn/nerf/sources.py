"""Frame sources for ``robolearn-nerf train``: synthetic scene, live MuJoCo sim, or a store.

A store holds posed frames under these per-step keys (next to the usual
``observation.images.<cam>``)::

    observation.camera_pose.<cam>        (T, 4, 4) float  OpenGL camera-to-world, metres
    observation.camera_intrinsics.<cam>  (T, 4)    float  fx, fy, cx, cy in pixels
    observation.depth.<cam>              (T, H, W) float  z-depth in metres (optional)
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from robolearn.keys import image_key
from robolearn.nerf.config import NerfSourceConfig
from robolearn.nerf.frames import Frame, Intrinsics

POSE_PREFIX = "observation.camera_pose."
INTRINSICS_PREFIX = "observation.camera_intrinsics."
DEPTH_PREFIX = "observation.depth."


def synthetic_frames(cfg: NerfSourceConfig, size: int) -> Iterator[Frame]:
    from robolearn.nerf.synthetic import orbit_stream

    yield from orbit_stream(cfg.n_frames, size, sweep=cfg.sweep, fovy=cfg.fovy)


def sim_frames(cfg: NerfSourceConfig, size: int) -> Iterator[Frame]:
    from robolearn.nerf.sim_source import SimCameraStream

    stream = SimCameraStream(cfg.robot, size, tuple(cfg.cameras))
    try:
        for sf in stream.frames(cfg.n_frames):
            yield sf.frame
    finally:
        stream.close()


def store_frames(cfg: NerfSourceConfig, size: int) -> Iterator[Frame]:
    from robolearn.data.store import TrajectoryStore

    cam = cfg.camera_key
    store = TrajectoryStore.open(cfg.store, "r")
    keys = set(store.keys)
    need = [image_key(cam), POSE_PREFIX + cam, INTRINSICS_PREFIX + cam]
    missing = [k for k in need if k not in keys]
    if missing:
        raise SystemExit(f"store {cfg.store} lacks {missing}; a NeRF source needs posed images "
                         f"(see robolearn.nerf.sources); cameras with images: "
                         f"{sorted(k for k in keys if k.startswith('observation.images.'))}")
    has_depth = DEPTH_PREFIX + cam in keys
    n = len(store)
    step = max(1, math.ceil(n / cfg.n_frames)) if cfg.n_frames > 0 else 1
    for start in range(0, n, 256):  # chunk-aligned reads (DESIGN.md section 4)
        stop = min(n, start + 256)
        rgb = store.read(image_key(cam), start, stop)
        pose = store.read(POSE_PREFIX + cam, start, stop)
        intr = store.read(INTRINSICS_PREFIX + cam, start, stop)
        depth = store.read(DEPTH_PREFIX + cam, start, stop) if has_depth else None
        for i in range(0, stop - start):
            if (start + i) % step:
                continue
            h, w = rgb[i].shape[:2]
            k = Intrinsics(*map(float, intr[i]), w, h)
            yield Frame(rgb=rgb[i], c2w=np.asarray(pose[i]).reshape(4, 4), intrinsics=k,
                        timestamp=float(start + i), depth=None if depth is None else depth[i])
    store.close()


def make_source(cfg: NerfSourceConfig, size: int) -> Iterator[Frame]:
    kinds = {"synthetic": synthetic_frames, "sim": sim_frames, "store": store_frames}
    if cfg.kind not in kinds:
        raise SystemExit(f"unknown nerf source {cfg.kind!r}; valid: {', '.join(kinds)}")
    return kinds[cfg.kind](cfg, size)
