"""Posed RGB-D frames from the MuJoCo tabletop sim (``robolearn.envs``), with exact poses.

The env renders RGB only, so this helper drives :class:`robolearn.envs.sim.TabletopSim`'s
``model``/``data`` directly: ``mujoco.Renderer`` with depth rendering (z-depth in metres),
the camera pose from ``data.cam_xpos``/``cam_xmat`` (MuJoCo cameras look along -z with y
up: already nerfstudio's OpenGL convention) and intrinsics from ``model.cam_fovy``.

The arm sweeps its wrist camera over the table (a smooth joint-space sweep around home);
fixed scene cameras (``front``, ``overhead``) can be streamed beside it.  Each frame also
carries the joint positions, so the FK pose source can be checked against the exact pose.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from dataclasses import dataclass  # noqa: E402
from typing import Iterator  # noqa: E402

import numpy as np  # noqa: E402

from robolearn.nerf.frames import Frame, Intrinsics  # noqa: E402


@dataclass
class SimFrame:
    """A frame plus where it came from."""

    frame: Frame
    camera: str
    qpos_arm: np.ndarray


def camera_pose(model, data, cam_id: int) -> np.ndarray:
    """World pose (4x4, OpenGL camera convention) of MuJoCo camera ``cam_id``."""
    c2w = np.eye(4)
    c2w[:3, :3] = data.cam_xmat[cam_id].reshape(3, 3)
    c2w[:3, 3] = data.cam_xpos[cam_id]
    return c2w


def camera_intrinsics(model, cam_id: int, width: int, height: int) -> Intrinsics:
    return Intrinsics.from_fovy(float(model.cam_fovy[cam_id]), width, height)


class MujocoFK:
    """Forward kinematics ``q -> T_world_body`` on a scratch ``MjData`` (for
    :class:`robolearn.nerf.sync.WristCameraFK`), plus the body->camera mount transform."""

    def __init__(self, model, arm_qadr, camera: str):
        import mujoco

        self.model, self.qadr = model, np.asarray(arm_qadr)
        self.data = mujoco.MjData(model)
        self.cam = model.camera(camera).id
        self.body = int(model.cam_bodyid[self.cam])
        mount = np.eye(4)
        quat = model.cam_quat[self.cam]
        mat = np.zeros(9)
        mujoco.mju_quat2Mat(mat, quat)
        mount[:3, :3], mount[:3, 3] = mat.reshape(3, 3), model.cam_pos[self.cam]
        self.t_body_cam = mount

    def __call__(self, q: np.ndarray) -> np.ndarray:
        import mujoco

        self.data.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, self.data)
        t = np.eye(4)
        t[:3, :3] = self.data.xmat[self.body].reshape(3, 3)
        t[:3, 3] = self.data.xpos[self.body]
        return t


class SimCameraStream:
    """Stream frames from the tabletop sim; see the module docstring."""

    def __init__(self, robot: str = "panda", size: int = 64, cameras=("wrist",), seed: int = 0):
        import mujoco

        from robolearn.envs.config import RandomizationConfig
        from robolearn.envs.randomize import sample_layout
        from robolearn.envs.sim import TabletopSim

        self.sim = TabletopSim(robot=robot)
        self.sim.reset(sample_layout(np.random.default_rng(seed),
                                     RandomizationConfig(colors=False)))
        self.size = size
        m = self.sim.model
        self.cam_names = [self.sim.robot.wrist_camera if c == "wrist" else c for c in cameras]
        self.cam_ids = [m.camera(c).id for c in self.cam_names]
        self.renderer = self.sim.renderer(size, size)
        self.depth_renderer = mujoco.Renderer(m, height=size, width=size)
        self.depth_renderer.enable_depth_rendering()
        self.fk = MujocoFK(m, self.sim.arm_qadr, self.cam_names[0])

    def render(self, cam_id: int) -> tuple[np.ndarray, np.ndarray]:
        r, d = self.renderer, self.depth_renderer
        r.update_scene(self.sim.data, cam_id)
        rgb = r.render().copy()
        d.update_scene(self.sim.data, cam_id)
        depth = d.render().copy()
        depth[depth > 5.0] = 0.0  # background / far plane -> unknown
        return rgb, depth

    def sweep_target(self, i: int, n: int) -> np.ndarray:
        """A smooth sweep around home: pan left-right twice while tilting (explores the table)."""
        q = self.sim.home_q.copy()
        s = i / max(n - 1, 1)
        q[0] += 0.9 * np.sin(2 * np.pi * s)
        q[1] += 0.25 * np.sin(4 * np.pi * s)
        q[3 if len(q) > 3 else -1] += 0.2 * np.cos(2 * np.pi * s)
        return q

    def frames(self, n: int, steps_per_frame: int = 2) -> Iterator[SimFrame]:
        """``n`` frames per camera along the sweep; timestamps are sim time (s)."""
        import mujoco

        sim = self.sim
        for i in range(n):
            target = self.sweep_target(i, n)
            for _ in range(steps_per_frame):
                sim.step(target, 0.0)
            # mj_step leaves poses of the state *before* integration: recompute so image,
            # camera pose and joint positions all describe the same instant
            mujoco.mj_forward(sim.model, sim.data)
            for name, cid in zip(self.cam_names, self.cam_ids):
                rgb, depth = self.render(cid)
                f = Frame(rgb=rgb, c2w=camera_pose(sim.model, sim.data, cid),
                          intrinsics=camera_intrinsics(sim.model, cid, self.size, self.size),
                          timestamp=float(sim.data.time), depth=depth)
                yield SimFrame(f, name, sim.qpos_arm().copy() if callable(sim.qpos_arm)
                               else np.asarray(sim.qpos_arm).copy())

    def close(self) -> None:
        self.depth_renderer.close()
        self.sim.close()
