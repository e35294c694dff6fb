"""``TabletopEnv``: the gymnasium face of the tabletop sim (ids ``robolearn/<Task>-v0``).

Observation (``Dict``)::

    images/<camera>  uint8 (R, R, 3)   one per configured camera (front, overhead, wrist)
    joint_pos        float32 (n,)      arm joint positions (rad); n = 7 Panda, 6 UR5e
    joint_vel        float32 (n,)      arm joint velocities (rad/s)
    gripper          float32 (1,)      closure, 0 = open .. 1 = closed
    ee_pose          float32 (7,)      pinch-site position (m) + w-x-y-z quaternion

Action (``Box``, float32), chosen by ``EnvConfig.action_space``:

* ``joint_pos`` (default): ``(n + 1,)`` absolute arm joint targets (rad, within the joint
  limits) for the position servos, then the gripper command in [0, 1] (0 open, 1 closed).
  The servo setpoint moves to the target at most at the arm's rated joint speeds (like a
  robot's trajectory controller), so a far target is a fast move, never a torque spike.
* ``ee_delta``: ``(7,)`` in [-1, 1]: EE translation (x ``ee_delta_pos_scale`` m) and rotation
  vector (x ``ee_delta_rot_scale`` rad) in the world frame, then the gripper in [0, 1];
  converted to joint targets by IK on MuJoCo's Jacobians.

``info``: ``success``, ``symbolic_state`` (see ``TabletopSim.symbolic_state``),
``instruction``, ``task``, ``task_args``, ``seed``, ``contact_reflex`` (the arm pressed
more than 1 cm into the table or a fixture during the step and was stopped, as a real arm's
collision reflex stops it; see ``sim.REFLEX_DEPTH``).  Reward is 1.0 on the step the task
succeeds (sparse), and the episode terminates there.  Should the physics go unstable
(MuJoCo then resets the whole scene to its defaults), the episode is truncated, unscored,
with ``info["sim_unstable"]`` saying where.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import dataclasses  # noqa: E402
import logging  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium import spaces  # noqa: E402

from robolearn.envs.config import OBJECT_STATE_DIM, EnvConfig  # noqa: E402
from robolearn.envs.randomize import (VisualRandomizer, check_randomization,  # noqa: E402
                                      sample_layout)
from robolearn.envs.scene import DRAWER_TRAVEL  # noqa: E402
from robolearn.envs.tasks import TaskSpec, get_task  # noqa: E402

log = logging.getLogger(__name__)

CAMERA_NAMES = ("front", "overhead", "wrist")


def _merge(cfg: EnvConfig, overrides: dict) -> EnvConfig:
    """Apply keyword overrides (``robot="ur5e"``, ``cameras={"resolution": 64}``)."""
    for key, value in overrides.items():
        if not hasattr(cfg, key):
            raise TypeError(f"unknown env option {key!r}; valid: "
                            f"{[f.name for f in dataclasses.fields(EnvConfig)]}")
        cur = getattr(cfg, key)
        if dataclasses.is_dataclass(cur) and isinstance(value, dict):
            value = dataclasses.replace(cur, **value)
        setattr(cfg, key, value)
    return cfg


def object_state(sim) -> np.ndarray:
    """The scene's state: each cube's xyz (in ``sim.cube_names`` order), the bowl's and the
    pad's xyz, the drawer's opening (m)."""
    parts = [sim.object_pos(c) for c in sim.cube_names] + [sim.object_pos("bowl"),
                                                           sim.object_pos("pad")]
    return np.concatenate(parts + [[sim.drawer_opening()]]).astype(np.float32)


def object_keypoints(sim, cameras, state: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Where each camera images the scene state's objects and the end effector: camera ->
    (6, 3) of u, v (0..1 of the image's width and height), in view (1/0), for the cubes,
    the bowl and the pad (``object_state``'s order; ``state``: it, if already read) and then
    the pinch site. Training labels for flow_vla's keypoint scene head, never a policy
    input."""
    state = object_state(sim) if state is None else state
    pts = np.concatenate([state[:15].reshape(5, 3), sim.ee_pos()[None]])
    return {cam: sim.project(cam, pts) for cam in cameras}


class TabletopEnv(gym.Env):
    """A tabletop task with a real arm; see the module docstring for spaces and info."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, task: str | TaskSpec = "PickPlace", config: EnvConfig | None = None,
                 render_mode: str | None = None, **overrides):
        from robolearn.envs.sim import TabletopSim

        self.task = get_task(task) if isinstance(task, str) else task
        self.cfg = _merge(dataclasses.replace(config) if config else EnvConfig(), overrides)
        if self.cfg.action_space not in ("joint_pos", "ee_delta"):
            raise ValueError(f"action_space must be 'joint_pos' or 'ee_delta', "
                             f"got {self.cfg.action_space!r}")
        check_randomization(self.cfg.randomization)
        bad = [c for c in self.cfg.cameras.names if c not in CAMERA_NAMES]
        if bad:
            raise ValueError(f"unknown cameras {bad}; choose from {list(CAMERA_NAMES)}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        cam = self.cfg.cameras
        self.sim = TabletopSim(self.cfg.robot, self.cfg.control_hz,
                               (cam.video_width, cam.video_height))
        self.metadata = {**self.metadata, "render_fps": int(round(self.cfg.control_hz))}
        self._visuals = VisualRandomizer(self.sim, self.cfg.randomization)
        self._ik = None
        n = len(self.sim.arm_qadr)
        obs = {"joint_pos": spaces.Box(-10.0, 10.0, (n,), np.float32),
               "joint_vel": spaces.Box(-100.0, 100.0, (n,), np.float32),
               "gripper": spaces.Box(0.0, 1.0, (1,), np.float32),
               "ee_pose": spaces.Box(-10.0, 10.0, (7,), np.float32)}
        if self.cfg.object_state:
            obs["objects"] = spaces.Box(-10.0, 10.0, (OBJECT_STATE_DIM,), np.float32)
        if cam.names:
            r = cam.resolution
            obs["images"] = spaces.Dict({c: spaces.Box(0, 255, (r, r, 3), np.uint8)
                                         for c in cam.names})
        self.observation_space = spaces.Dict(obs)
        if self.cfg.action_space == "joint_pos":
            lo, hi = self.sim.joint_range[:, 0], self.sim.joint_range[:, 1]
            self.action_space = spaces.Box(np.r_[lo, 0.0].astype(np.float32),
                                           np.r_[hi, 1.0].astype(np.float32), dtype=np.float32)
        else:
            self.action_space = spaces.Box(np.r_[-np.ones(6), 0.0].astype(np.float32),
                                           np.ones(7, np.float32), dtype=np.float32)
        self.task_args: dict = {}
        self.instruction = ""
        self.episode_seed: int | None = None
        self.layout = None  # the last reset's object placement (randomize.Layout)
        self._elapsed = 0
        #: False: reset/step observations leave out the camera images (no rendering); an
        #: image-less rollout can render chosen steps afterwards (sim.snapshot, images_of)
        self.observe_images = True

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        self.episode_seed = int(self.np_random.integers(2**31 - 1))
        rng = np.random.default_rng(self.episode_seed)
        # fixed draw order (args, instruction, layout, visuals): reproducible per seed
        args = self.task.sample_args(rng)
        args.update(options.get("task_args", {}))
        self.task_args = args
        self.instruction = options.get("instruction") or self.task.instruction(args, rng)
        opening = {"closed": 0.0, "open": DRAWER_TRAVEL}[options.get("drawer",
                                                                      self._drawer_start(args))]
        self.layout = layout = sample_layout(rng, self.cfg.randomization, drawer_opening=opening)
        self._visuals.apply(rng)
        self.sim.reset(layout)
        self._elapsed = 0
        return self._obs(), self._info(success=False)

    def _drawer_start(self, args: dict) -> str:
        """The task's drawer start state, or open with ``randomization.drawer_open_prob``
        where the task does not use the drawer (its own seed stream: the layout draws and
        so every other part of the scene stay what they are without it)."""
        p = self.cfg.randomization.drawer_open_prob
        if p <= 0.0 or self.task.uses_drawer(args):
            return self.task.drawer_start
        drawer_rng = np.random.default_rng([self.episode_seed, 1])
        return "open" if drawer_rng.random() < p else self.task.drawer_start

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action has shape {action.shape}, expected {self.action_space.shape}"
                             f" ({self.cfg.action_space})")
        if not np.all(np.isfinite(action)):
            raise ValueError("action contains NaN/inf; check the policy output")
        action = np.clip(action, self.action_space.low, self.action_space.high)
        if self.cfg.action_space == "joint_pos":
            q, grip = action[:-1], action[-1]
        else:
            q, grip = self._ee_delta_to_joints(action[:6]), action[6]
        self.sim.step(q, grip)
        self._elapsed += 1
        unstable = self.sim.instability()
        if unstable:  # MuJoCo reset the scene: end the episode, unscored
            log.warning("%s seed %s, step %d: the simulation went unstable (%s); the episode "
                        "ends as truncated and failed", self.task.name, self.episode_seed,
                        self._elapsed, unstable)
            return self._obs(), 0.0, False, True, {**self._info(False), "sim_unstable": unstable}
        success = self.task.success(self.sim, self.task_args)
        return self._obs(), float(success), bool(success), False, self._info(success)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        cam = self.cfg.cameras
        return self.sim.render(cam.video_camera, cam.video_width, cam.video_height,
                               high_quality=cam.high_quality_video)

    def close(self):
        self.sim.close()

    def current_observation(self, cameras: list[str] | None = None,
                            resolution: int | None = None) -> dict:
        """The observation of the current state, as reset/step return it; ``cameras`` and
        ``resolution`` override the configured learning cameras (e.g. for a policy that
        reads other cameras than the env was made with)."""
        cam = self.cfg.cameras
        names = cam.names if cameras is None else list(cameras)
        bad = [c for c in names if c not in CAMERA_NAMES]
        if bad:
            raise ValueError(f"unknown cameras {bad}; choose from {list(CAMERA_NAMES)}")
        s = self.sim
        d = s.data
        obs = {"joint_pos": d.qpos[s.arm_qadr].astype(np.float32),
               "joint_vel": np.clip(d.qvel[s.arm_dofadr], -100, 100).astype(np.float32),
               "gripper": np.array([s.gripper_closure()], np.float32),
               "ee_pose": s.ee_pose().astype(np.float32)}
        if self.cfg.object_state:
            obs["objects"] = object_state(s)
        if names:
            res = resolution or cam.resolution
            obs["images"] = {c: s.render(c, res) for c in names}
        return obs

    # ------------------------------------------------------------------ helpers
    def _obs(self) -> dict:
        return self.current_observation(None if self.observe_images else [])

    def images_of(self, snapshot) -> dict[str, np.ndarray]:
        """The learning cameras' images of a :meth:`TabletopSim.snapshot`, as an
        observation's ``images`` would have held them when it was taken."""
        cam = self.cfg.cameras
        return {c: self.sim.render(c, cam.resolution, data=snapshot) for c in cam.names}

    def _info(self, success: bool) -> dict:
        return {"success": bool(success), "symbolic_state": self.sim.symbolic_state(),
                "instruction": self.instruction, "task": self.task.name,
                "task_args": dict(self.task_args), "seed": self.episode_seed,
                "contact_reflex": self.sim.reflex}

    @property
    def ik(self):
        if self._ik is None:
            from robolearn.envs.control import IKSolver

            self._ik = IKSolver(self.sim)
        return self._ik

    def _ee_delta_to_joints(self, delta: np.ndarray) -> np.ndarray:
        import mujoco

        s = self.sim
        pos = s.ee_pos() + delta[:3] * self.cfg.ee_delta_pos_scale
        rot = np.zeros(4)
        mujoco.mju_axisAngle2Quat(rot, delta[3:6] / (np.linalg.norm(delta[3:6]) + 1e-12),
                                  float(np.linalg.norm(delta[3:6]) * self.cfg.ee_delta_rot_scale))
        rmat = np.zeros(9)
        mujoco.mju_quat2Mat(rmat, rot)
        mat = rmat.reshape(3, 3) @ s.ee_mat()
        return self.ik.solve(pos, mat, s.arm_target)

    def expert_action(self, ctx) -> np.ndarray:
        """The action in this env's action space that realises an expert's commanded pose."""
        from robolearn.envs.geometry import rot_error

        if self.cfg.action_space == "joint_pos":
            return np.r_[ctx.joint_target(), ctx.grip].astype(np.float32)
        pos, mat, grip = ctx.ee_target()
        s = self.sim
        d = np.r_[(pos - s.ee_pos()) / self.cfg.ee_delta_pos_scale,
                  rot_error(s.ee_mat(), mat) / self.cfg.ee_delta_rot_scale]
        return np.r_[np.clip(d, -1, 1), grip].astype(np.float32)
