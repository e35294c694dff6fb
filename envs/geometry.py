"""Small rotation helpers (numpy; MuJoCo's w-x-y-z quaternion convention)."""

from __future__ import annotations

import numpy as np


def mat_to_quat(mat: np.ndarray) -> np.ndarray:
    import mujoco

    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(mat, dtype=float).reshape(-1))
    return q


def quat_to_mat(quat: np.ndarray) -> np.ndarray:
    import mujoco

    m = np.zeros(9)
    mujoco.mju_quat2Mat(m, np.asarray(quat, float))
    return m.reshape(3, 3)


def lookat_quat(pos, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Quaternion of a MuJoCo camera at ``pos`` looking at ``target`` (cameras look along -z,
    +y is image up)."""
    pos, target, up = (np.asarray(v, float) for v in (pos, target, up))
    z = pos - target
    z /= np.linalg.norm(z)
    x = np.cross(up, z)
    if np.linalg.norm(x) < 1e-6:
        x = np.array([0.0, -1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return mat_to_quat(np.stack([x, y, z], axis=1))


def down_mat(yaw: float) -> np.ndarray:
    """Gripper frame pointing down (+z = world -z) with its x axis at ``yaw`` in the table
    plane.  The 2F-85 closes along its y axis, i.e. along (sin yaw, -cos yaw, 0)."""
    c, s = np.cos(yaw), np.sin(yaw)
    x = np.array([c, s, 0.0])
    z = np.array([0.0, 0.0, -1.0])
    return np.stack([x, np.cross(z, x), z], axis=1)


def yaw_of(mat: np.ndarray) -> float:
    """Yaw of a frame's x axis projected on the table plane."""
    return float(np.arctan2(mat[1, 0], mat[0, 0]))


def wrap(a: float) -> float:
    return float((a + np.pi) % (2 * np.pi) - np.pi)


def rot_error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Axis-angle 3-vector (world frame) that rotates ``current`` onto ``target``."""
    import mujoco

    qc, qt = mat_to_quat(current), mat_to_quat(target)
    qe = np.zeros(4)
    mujoco.mju_negQuat(qc, qc)
    mujoco.mju_mulQuat(qe, qt, qc)
    v = np.zeros(3)
    mujoco.mju_quat2Vel(v, qe, 1.0)
    return v


def box_yaw(quat: np.ndarray) -> float:
    """Yaw of a cube's x axis."""
    return yaw_of(quat_to_mat(quat))
