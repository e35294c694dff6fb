"""Pose sources and approximate time synchronisation of images with poses.

A camera image is only useful with the camera's pose at the same instant.  Poses come from:

* :class:`FixedCameraPose` -- a calibrated static camera (one extrinsic, any time);
* :class:`WristCameraFK` -- forward kinematics of the arm from joint states, composed with
  the camera mount (``T_world_cam = FK(q) @ T_link_cam``);
* :class:`PoseStream` -- an external odometry/SLAM pose topic.

Joint states and odometry poses are buffered by time; :class:`TimeSync` pairs each image
with the nearest sample within ``slop`` seconds (the behaviour of ROS'
``ApproximateTimeSynchronizer``) and, unlike a silent synchroniser, warns once when
``warn_after`` images in a row found no partner -- the classic "training never starts"
because clocks differ or the slop is too tight -- and says by how much they missed.
"""

from __future__ import annotations

import bisect
import logging
from collections import deque
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)


class FixedCameraPose:
    """A calibrated camera that does not move."""

    def __init__(self, c2w: np.ndarray):
        self.c2w = np.asarray(c2w, dtype=np.float64)

    def pose_at(self, t: float, slop: float) -> tuple[np.ndarray | None, float]:
        return self.c2w, 0.0

    def latest_time(self) -> float:
        return float("inf")


class _Timed:
    """Time-ordered samples with nearest-neighbour lookup; bounded length."""

    def __init__(self, maxlen: int = 2000):
        self.t: deque = deque(maxlen=maxlen)
        self.v: deque = deque(maxlen=maxlen)

    def push(self, t: float, value) -> None:
        if self.t and t < self.t[-1]:  # out of order: insert in place (rare)
            i = bisect.bisect(list(self.t), t)
            self.t.insert(i, t)
            self.v.insert(i, value)
        else:
            self.t.append(t)
            self.v.append(value)

    def nearest(self, t: float):
        """``(value, |dt|)`` of the sample nearest ``t``; ``(None, inf)`` if empty."""
        if not self.t:
            return None, float("inf")
        ts = self.t
        i = bisect.bisect(ts, t)
        cands = [j for j in (i - 1, i) if 0 <= j < len(ts)]
        j = min(cands, key=lambda k: abs(ts[k] - t))
        return self.v[j], abs(ts[j] - t)


class PoseStream:
    """External camera poses (odometry/SLAM) pushed with their timestamps."""

    def __init__(self, maxlen: int = 2000):
        self._buf = _Timed(maxlen)

    def push(self, t: float, c2w: np.ndarray) -> None:
        self._buf.push(t, np.asarray(c2w, dtype=np.float64))

    def pose_at(self, t: float, slop: float):
        pose, dt = self._buf.nearest(t)
        return (pose if dt <= slop else None), dt

    def latest_time(self) -> float:
        """Stamp of the newest pose (-inf before the first)."""
        return self._buf.t[-1] if self._buf.t else float("-inf")


class WristCameraFK:
    """Wrist camera pose from joint states: ``fk(q) -> T_world_link`` (4x4) composed with the
    fixed mount ``T_link_cam`` (OpenGL camera convention)."""

    def __init__(self, fk: Callable[[np.ndarray], np.ndarray], t_link_cam: np.ndarray,
                 maxlen: int = 2000):
        self.fk, self.t_link_cam = fk, np.asarray(t_link_cam, dtype=np.float64)
        self._buf = _Timed(maxlen)

    def push_joints(self, t: float, q: np.ndarray) -> None:
        self._buf.push(t, np.asarray(q, dtype=np.float64))

    def pose_at(self, t: float, slop: float):
        q, dt = self._buf.nearest(t)
        if q is None or dt > slop:
            return None, dt
        return self.fk(q) @ self.t_link_cam, dt

    def latest_time(self) -> float:
        """Stamp of the newest joint state (-inf before the first)."""
        return self._buf.t[-1] if self._buf.t else float("-inf")


class TimeSync:
    """Pair images with poses from ``source`` within ``slop`` seconds; warn when nothing syncs."""

    def __init__(self, source, slop: float = 0.05, warn_after: int = 10):
        self.source, self.slop, self.warn_after = source, slop, warn_after
        self.misses_in_a_row = 0
        self.n_matched = 0
        self.last_miss_dt = float("inf")
        self.warned = False

    def match(self, t_image: float) -> np.ndarray | None:
        """The pose for an image stamped ``t_image``, or None (and maybe a warning)."""
        pose, dt = self.source.pose_at(t_image, self.slop)
        if pose is not None:
            self.n_matched += 1
            self.misses_in_a_row = 0
            return pose
        self._miss(dt)
        return None

    def try_match(self, t_image: float) -> tuple[np.ndarray | None, bool]:
        """Like :meth:`match` for live streams whose poses may arrive after the image:
        ``(pose, True)`` on a match, ``(None, True)`` once no later pose can match (the
        newest pose is already past ``t_image + slop``: counted as a miss), ``(None, False)``
        while one still might (keep the image and ask again when poses arrive)."""
        pose, dt = self.source.pose_at(t_image, self.slop)
        if pose is not None:
            self.n_matched += 1
            self.misses_in_a_row = 0
            return pose, True
        if self.source.latest_time() < t_image + self.slop:
            return None, False
        self._miss(dt)
        return None, True

    def _miss(self, dt: float) -> None:
        self.misses_in_a_row += 1
        self.last_miss_dt = dt
        if self.misses_in_a_row >= self.warn_after and not self.warned:
            self.warned = True
            why = ("no pose/joint message has arrived at all" if not np.isfinite(dt) else
                   f"the nearest pose was {dt:.3f} s away")
            log.warning("nerf: %d images in a row had no pose within slop=%.3f s (%s); training "
                        "cannot start. Check that both streams share a clock (sim time vs wall "
                        "time) or raise `slop`.", self.misses_in_a_row, self.slop, why)
        return None


class FrameAssembler:
    """Live sources (the ROS ``nerf_node``, a sim loop): images in, posed frames out.

    ``on_image`` looks up the pose at the image's stamp through ``sync`` and returns a
    :class:`~robolearn.nerf.frames.Frame` for ``NerfBridge.add_frame``, or None while no
    pose matches (``TimeSync`` warns if that persists).  Intrinsics come with each image
    (ROS ``CameraInfo``) or once at construction for a camera that never changes.
    """

    def __init__(self, sync: TimeSync, intrinsics=None):
        self.sync, self.intrinsics = sync, intrinsics

    def on_image(self, t: float, rgb: np.ndarray, intrinsics=None, depth=None):
        from robolearn.nerf.frames import Frame

        pose = self.sync.match(t)
        if pose is None:
            return None
        return Frame(rgb=rgb, c2w=pose, intrinsics=intrinsics or self.intrinsics,
                     timestamp=t, depth=depth)
