"""Write posed frames as a nerfstudio dataset (``transforms.json`` + PNGs), so nerfstudio's
own tools (``ns-train nerfacto --data DIR``, the offline baseline of ``bench_nerf.py``)
train on exactly the frames the bridge saw."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from robolearn.nerf.frames import Frame


def write_nerfstudio_dataset(frames: Sequence[Frame], out: str | Path,
                             to_nerf_pose: Callable[[np.ndarray], np.ndarray] | None = None
                             ) -> Path:
    """Frames -> ``out/transforms.json`` + ``out/images/*.png``; poses mapped by
    ``to_nerf_pose`` (e.g. ``bridge.to_nerf_pose``) so nerfstudio needs no re-centring."""
    from PIL import Image

    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    recs = []
    for i, f in enumerate(frames):
        name = f"images/frame_{i:05d}.png"
        Image.fromarray(f.rgb).save(out / name)
        c2w = to_nerf_pose(f.c2w) if to_nerf_pose else np.asarray(f.c2w)
        k = f.intrinsics
        recs.append({"file_path": name, "transform_matrix": np.asarray(c2w).tolist(),
                     "fl_x": k.fx, "fl_y": k.fy, "cx": k.cx, "cy": k.cy,
                     "w": k.width, "h": k.height})
    meta = {"camera_model": "OPENCV", "frames": recs,
            # nerfstudio assumes a COLMAP axis swap when this key is missing
            "applied_transform": np.eye(4)[:3].tolist()}
    (out / "transforms.json").write_text(json.dumps(meta, indent=1))
    return out


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None) -> Path:
    """Binary little-endian PLY of (N, 3) points and optional (N, 3) colours in [0, 1]."""
    path = Path(path)
    pts = np.asarray(points, dtype="<f4").reshape(-1, 3)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    rec = np.empty(len(pts), dtype=fields)
    rec["x"], rec["y"], rec["z"] = pts.T
    if colors is not None:
        c = (np.clip(np.asarray(colors), 0, 1) * 255 + 0.5).astype(np.uint8).reshape(-1, 3)
        rec["red"], rec["green"], rec["blue"] = c.T
    props = "".join(f"property {'float' if t == '<f4' else 'uchar'} {n}\n" for n, t in fields)
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(pts)}\n{props}"
              "end_header\n")
    with path.open("wb") as fh:
        fh.write(header.encode())
        fh.write(rec.tobytes())
    return path


def read_ply_points(path: str | Path) -> np.ndarray:
    """The (N, 3) float points of a PLY written by :func:`write_ply`."""
    data = Path(path).read_bytes()
    head, body = data.split(b"end_header\n", 1)
    lines = head.decode().splitlines()
    n = int(next(ln for ln in lines if ln.startswith("element vertex")).split()[-1])
    has_rgb = any(ln.endswith(" red") for ln in lines)
    dt = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")] + (
        [("r", "u1"), ("g", "u1"), ("b", "u1")] if has_rgb else [])
    rec = np.frombuffer(body, dtype=dt, count=n)
    return np.stack([rec["x"], rec["y"], rec["z"]], -1).astype(np.float64)
