"""A procedurally ray-traced scene with known geometry, for tests and benchmarks.

Ground plane ``z = 0`` with a checkerboard, a red sphere and a blue/green box on it, a
sky gradient behind.  Everything is analytic, so rendered depth is exact (z-depth, metres).
No sim, no GPU, ~ms per 48 px frame.
"""

from __future__ import annotations

import math

import numpy as np

from robolearn.nerf.frames import Frame, Intrinsics

SPHERE_C, SPHERE_R = np.array([0.15, -0.1, 0.12]), 0.12
BOX_LO, BOX_HI = np.array([-0.25, 0.0, 0.0]), np.array([-0.05, 0.25, 0.18])
MAX_DEPTH = 20.0


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenGL camera-to-world looking from ``eye`` at ``target``."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross(up, back)
    if np.linalg.norm(right) < 1e-6:
        right = np.cross((0.0, 1.0, 0.0), back)
    right /= np.linalg.norm(right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, np.cross(back, right), back, eye
    return c2w


def orbit_pose(angle: float, radius: float = 0.9, height: float = 0.55,
               target=(0.0, 0.0, 0.08)) -> np.ndarray:
    return look_at((radius * math.cos(angle), radius * math.sin(angle), height), target)


def render(c2w: np.ndarray, k: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb uint8 (H, W, 3), z-depth float32 (H, W))`` of the scene from ``c2w``."""
    j, i = np.meshgrid(np.arange(k.height) + 0.5, np.arange(k.width) + 0.5, indexing="ij")
    d_cam = np.stack([(i - k.cx) / k.fx, -(j - k.cy) / k.fy, -np.ones_like(i)], -1)
    d = d_cam @ c2w[:3, :3].T
    o = np.broadcast_to(c2w[:3, 3], d.shape)
    t = np.full(d.shape[:2], np.inf)
    col = np.zeros(d.shape)
    # ground plane z = 0
    tp = np.where(d[..., 2] < -1e-9, -o[..., 2] / np.where(d[..., 2] < -1e-9, d[..., 2], -1), np.inf)
    p = o + tp[..., None] * d
    checker = (np.floor(p[..., 0] / 0.2) + np.floor(p[..., 1] / 0.2)) % 2
    hit = (tp < t) & (np.abs(p[..., 0]) < 1.5) & (np.abs(p[..., 1]) < 1.5)
    t = np.where(hit, tp, t)
    col = np.where(hit[..., None], np.where(checker[..., None] > 0, [0.85, 0.82, 0.75],
                                            [0.35, 0.33, 0.30]), col)
    # sphere
    oc = o - SPHERE_C
    b = (oc * d).sum(-1)
    c = (oc * oc).sum(-1) - SPHERE_R**2
    a2 = (d * d).sum(-1)  # rays are not unit length (d_cam.z = -1)
    disc = b * b - a2 * c
    ts = np.where(disc > 0, (-b - np.sqrt(np.maximum(disc, 0))) / a2, np.inf)
    ts = np.where(ts > 1e-6, ts, np.inf)
    hit = ts < t
    n = (o + np.where(hit, ts, 0.0)[..., None] * d - SPHERE_C) / SPHERE_R
    shade = 0.55 + 0.45 * np.clip(n @ np.array([0.3, -0.4, 0.85]), 0, 1)
    t = np.where(hit, ts, t)
    col = np.where(hit[..., None], shade[..., None] * np.array([0.9, 0.15, 0.1]), col)
    # axis-aligned box (slab test), face colour by axis
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (BOX_LO - o) / d, (BOX_HI - o) / d
    tmin, tmax = np.minimum(t1, t2), np.maximum(t1, t2)
    tn, tf = np.nan_to_num(tmin, nan=-np.inf).max(-1), np.nan_to_num(tmax, nan=np.inf).min(-1)
    tb = np.where((tn <= tf) & (tn > 1e-6), tn, np.inf)
    hit = tb < t
    axis = np.nan_to_num(tmin, nan=-np.inf).argmax(-1)
    face = np.array([[0.1, 0.3, 0.9], [0.1, 0.7, 0.3], [0.95, 0.85, 0.2]])[axis]
    t = np.where(hit, tb, t)
    col = np.where(hit[..., None], face, col)
    # sky
    sky = np.stack([0.55 + 0.2 * d[..., 2], 0.7 + 0.2 * d[..., 2], np.full(d.shape[:2], 0.95)], -1)
    col = np.where(np.isinf(t)[..., None], sky, col)
    zdepth = np.where(np.isinf(t), 0.0, t * 1.0)  # |d_cam.z| == 1, so t is z-depth
    rgb = (np.clip(col, 0, 1) * 255 + 0.5).astype(np.uint8)
    return rgb, zdepth.astype(np.float32)


def make_frame(c2w: np.ndarray, size: int = 32, fovy: float = 50.0, t: float = 0.0) -> Frame:
    k = Intrinsics.from_fovy(fovy, size, size)
    rgb, depth = render(c2w, k)
    return Frame(rgb=rgb, c2w=c2w, intrinsics=k, timestamp=t, depth=depth)


def orbit_stream(n: int, size: int = 32, start: float = 0.0, sweep: float = 2 * math.pi,
                 fovy: float = 50.0, jitter_height: float = 0.1):
    """``n`` frames on an orbit from ``start`` through ``sweep`` radians (exploring if the
    sweep is large: later frames see parts of the scene earlier ones did not)."""
    for idx in range(n):
        a = start + sweep * idx / max(n - 1, 1)
        h = 0.55 + jitter_height * math.sin(3.1 * a)
        yield make_frame(orbit_pose(a, height=h), size, fovy, t=idx * 0.1)
