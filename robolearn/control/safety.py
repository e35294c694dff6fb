"""Joint position / velocity limits applied to every command before it reaches the arm."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SafetyReport:
    """What :meth:`JointLimits.apply` changed (for warnings and diagnostics)."""

    position_clamped: list[int] = field(default_factory=list)
    velocity_clamped: list[int] = field(default_factory=list)

    @property
    def clamped(self) -> bool:
        return bool(self.position_clamped or self.velocity_clamped)


@dataclass
class JointLimits:
    """Per-joint position bounds (rad) and speed bounds (rad/s) of the arm; the gripper
    command (last entry of an action) is clamped to [0, 1]."""

    lower: np.ndarray
    upper: np.ndarray
    max_velocity: np.ndarray

    def __post_init__(self):
        self.lower = np.asarray(self.lower, float)
        self.upper = np.asarray(self.upper, float)
        self.max_velocity = np.asarray(self.max_velocity, float)
        n = len(self.lower)
        if not (len(self.upper) == len(self.max_velocity) == n) or n == 0:
            raise ValueError(f"joint limits need equal, non-empty lower/upper/max_velocity "
                             f"lists (got {len(self.lower)}/{len(self.upper)}/"
                             f"{len(self.max_velocity)})")
        if np.any(self.lower >= self.upper):
            raise ValueError(f"joint limits: every lower must be < upper ({self.lower} vs "
                             f"{self.upper})")
        if np.any(self.max_velocity <= 0):
            raise ValueError(f"joint limits: max_velocity must be > 0, got {self.max_velocity}")

    @property
    def n_joints(self) -> int:
        return len(self.lower)

    @classmethod
    def for_robot(cls, robot: str) -> "JointLimits":
        """From the robot's model (the URDF-equivalent) and datasheet speeds."""
        from robolearn.envs.robots import robot_limits

        return cls(**robot_limits(robot))

    def apply(self, action: np.ndarray, last: np.ndarray, dt: float,
              velocity_scale: float = 1.0) -> tuple[np.ndarray, SafetyReport]:
        """Clamp arm targets of ``action`` ([q_1..q_n, gripper]) into the position limits and
        to at most ``max_velocity * velocity_scale * dt`` away from ``last`` (the previous
        command, or the measured position when there is none)."""
        a = np.asarray(action, float).copy()
        n = self.n_joints
        if a.shape != (n + 1,):
            raise ValueError(f"action has {a.shape[0] if a.ndim else 0} values; this arm needs "
                             f"{n} joints + gripper = {n + 1}")
        rep = SafetyReport()
        q = a[:n]
        inside = np.clip(q, self.lower, self.upper)
        rep.position_clamped = np.flatnonzero(inside != q).tolist()
        step = self.max_velocity * velocity_scale * dt
        last = np.asarray(last, float)[:n]
        limited = np.clip(inside, last - step, last + step)
        rep.velocity_clamped = np.flatnonzero(limited != inside).tolist()
        a[:n] = limited
        a[n] = float(np.clip(a[n], 0.0, 1.0))
        return a, rep
