"""Posed camera frames: the unit the bridge ingests, and their validation.

Conventions (nerfstudio's): ``c2w`` is a 4x4 (or 3x4) camera-to-world transform in the
**OpenGL** camera frame (x right, y up, camera looks along -z), metres.  ROS optical frames
and OpenCV use x right, y down, z forward: convert with :func:`opencv_to_opengl`.
``depth`` is z-depth (distance along the optical axis, metres), 0 or non-finite = unknown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class FrameError(ValueError):
    """A frame that cannot be used; the message names the problem and the fix."""


@dataclass
class Intrinsics:
    """Pinhole intrinsics in pixels for an image of ``width`` x ``height``."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_fovy(cls, fovy_deg: float, width: int, height: int) -> "Intrinsics":
        """Square-pixel intrinsics from a vertical field of view (MuJoCo's ``cam_fovy``)."""
        f = 0.5 * height / math.tan(math.radians(fovy_deg) / 2)
        return cls(f, f, width / 2.0, height / 2.0, width, height)

    @classmethod
    def from_k(cls, k, width: int, height: int) -> "Intrinsics":
        """From a 3x3 K matrix (ROS ``CameraInfo.k`` row-major, 9 values)."""
        k = np.asarray(k, dtype=np.float64).reshape(3, 3)
        return cls(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), width, height)

    def as_array(self) -> np.ndarray:
        return np.array([self.fx, self.fy, self.cx, self.cy], dtype=np.float32)


@dataclass
class Frame:
    """One posed image.  ``rgb`` (H, W, 3) uint8; ``depth`` (H, W) float metres or None."""

    rgb: np.ndarray
    c2w: np.ndarray
    intrinsics: Intrinsics | None
    timestamp: float = 0.0
    depth: np.ndarray | None = None


def opencv_to_opengl(c2w: np.ndarray) -> np.ndarray:
    """Camera-to-world in the OpenCV/ROS optical convention -> OpenGL (flip y and z axes)."""
    out = np.array(c2w, dtype=np.float64, copy=True)
    out[:3, 1:3] *= -1.0
    return out


def as_4x4(c2w) -> np.ndarray:
    m = np.asarray(c2w, dtype=np.float64)
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    return m


def validate_frame(frame: Frame, width: int, height: int, rot_tol: float = 1e-3) -> Frame:
    """Check one frame against the bridge's image size; return it normalised or raise
    :class:`FrameError` naming the problem (the caller drops the frame and keeps training)."""
    if frame.intrinsics is None:
        raise FrameError("frame has no intrinsics; pass Intrinsics (e.g. from CameraInfo.k or "
                         "Intrinsics.from_fovy) with every frame")
    rgb = np.asarray(frame.rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[:2] != (height, width):
        raise FrameError(f"image has shape {tuple(rgb.shape)}, expected ({height}, {width}, 3); "
                         f"resize before streaming or set image_width/image_height in the config")
    if rgb.dtype != np.uint8:
        if not np.issubdtype(rgb.dtype, np.floating) or not np.isfinite(rgb).all():
            raise FrameError(f"image dtype {rgb.dtype} is not uint8 or finite float in [0, 1]")
        rgb = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    k = frame.intrinsics
    if (k.width, k.height) != (width, height):
        raise FrameError(f"intrinsics are for {k.width}x{k.height} but the image is "
                         f"{width}x{height}; scale fx, fy, cx, cy with the image")
    if not (np.isfinite(k.as_array()).all() and k.fx > 0 and k.fy > 0):
        raise FrameError(f"invalid intrinsics fx={k.fx} fy={k.fy} cx={k.cx} cy={k.cy}")
    c2w = np.asarray(frame.c2w, dtype=np.float64)
    if c2w.shape not in ((4, 4), (3, 4)):
        raise FrameError(f"pose has shape {c2w.shape}, expected 4x4 or 3x4 camera-to-world")
    if not np.isfinite(c2w).all():
        raise FrameError("pose contains NaN/inf; check the pose source (FK, odometry) for this "
                         "timestamp")
    c2w = as_4x4(c2w)
    r = c2w[:3, :3]
    err = float(np.abs(r.T @ r - np.eye(3)).max())
    if err > rot_tol or abs(np.linalg.det(r) - 1.0) > 10 * rot_tol:
        raise FrameError(f"pose rotation is not orthonormal (|R^T R - I| = {err:.2e}, det = "
                         f"{np.linalg.det(r):.3f}); send a proper rotation (re-orthonormalise "
                         f"or fix the quaternion normalisation)")
    depth = frame.depth
    if depth is not None:
        depth = np.asarray(depth, dtype=np.float32).reshape(np.shape(depth)[:2])
        if depth.shape != (height, width):
            raise FrameError(f"depth has shape {depth.shape}, expected ({height}, {width})")
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)
    return Frame(rgb=rgb, c2w=c2w, intrinsics=k, timestamp=float(frame.timestamp), depth=depth)
