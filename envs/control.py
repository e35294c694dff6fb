"""Inverse kinematics on MuJoCo Jacobians: EE pose targets -> arm joint targets.

Damped least squares (Levenberg-Marquardt style, as in Buss 2004 / MuJoCo's ``mink``):
``dq = J^T (J J^T + lambda^2 I)^-1 e`` on a 6-D pose error, iterated on a scratch
``MjData`` so the simulation itself is never touched.  A redundant arm (Panda, 7 DoF) also
gets a null-space pull towards its home posture, which keeps the elbow where a human
operator would expect it and away from joint limits.  The result is a *joint target* that
the position servos track: nothing is teleported.
"""

from __future__ import annotations

import mujoco
import numpy as np

from robolearn.envs.geometry import rot_error


class IKSolver:
    """Joint targets for a desired pinch-site pose of one ``TabletopSim``."""

    def __init__(self, sim, damping: float = 0.05, rot_weight: float = 0.5,
                 nullspace_gain: float = 0.2):
        self.sim = sim
        self.model = sim.model
        self.scratch = mujoco.MjData(sim.model)
        self.damping = damping
        self.rot_weight = rot_weight
        self.nullspace_gain = nullspace_gain
        self._jacp = np.zeros((3, self.model.nv))
        self._jacr = np.zeros((3, self.model.nv))

    def solve(self, pos: np.ndarray, mat: np.ndarray, q_init: np.ndarray,
              iters: int = 15, tol: float = 1e-4) -> np.ndarray:
        """Arm joint targets putting the EE site at ``pos`` with orientation ``mat``."""
        sim, m, d = self.sim, self.model, self.scratch
        d.qpos[:] = sim.data.qpos  # objects/gripper as they are; only the arm moves
        q = np.clip(np.asarray(q_init, float).copy(), sim.joint_range[:, 0], sim.joint_range[:, 1])
        n = len(q)
        lam2 = self.damping ** 2
        w = np.r_[np.ones(3), np.full(3, self.rot_weight)]
        for _ in range(iters):
            d.qpos[sim.arm_qadr] = q
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            err_p = pos - d.site_xpos[sim.ee_site]
            err_r = rot_error(d.site_xmat[sim.ee_site].reshape(3, 3), mat)
            e = np.r_[err_p, err_r] * w
            if np.linalg.norm(err_p) < tol and np.linalg.norm(err_r) < 10 * tol:
                break
            mujoco.mj_jacSite(m, d, self._jacp, self._jacr, sim.ee_site)
            J = np.vstack([self._jacp[:, sim.arm_dofadr], self._jacr[:, sim.arm_dofadr]])
            J = J * w[:, None]
            JJt = J @ J.T + lam2 * np.eye(6)
            dq = J.T @ np.linalg.solve(JJt, e)
            if n > 6:  # redundancy: drift towards home in the Jacobian's null space
                pinv = J.T @ np.linalg.inv(JJt)
                null = np.eye(n) - pinv @ J
                dq += null @ (self.nullspace_gain * (sim.home_q - q))
            step = np.linalg.norm(dq)
            if step > 0.3:  # trust region: big jumps make DLS oscillate
                dq *= 0.3 / step
            q = np.clip(q + dq, sim.joint_range[:, 0], sim.joint_range[:, 1])
        return q

    def fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """EE position and rotation for arm joints ``q``."""
        sim, m, d = self.sim, self.model, self.scratch
        d.qpos[:] = sim.data.qpos
        d.qpos[sim.arm_qadr] = q
        mujoco.mj_kinematics(m, d)
        return d.site_xpos[sim.ee_site].copy(), d.site_xmat[sim.ee_site].reshape(3, 3).copy()
