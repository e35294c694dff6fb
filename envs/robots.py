"""Arm models: MuJoCo Menagerie Panda / UR5e, each with a Robotiq 2F-85, as ``MjSpec``s.

Both arms end up with the same interface: position servos on every arm joint (a
joint-target action is then what the robot's own joint controllers would receive),
gravity compensation on every arm body (Menagerie's Panda uses torque motors; a real Panda
compensates gravity in firmware), a tendon-driven 2F-85 whose command maps 0 = open,
1 = closed, a ``pinch`` site between the fingertips as the end-effector frame, and a wrist
camera on the gripper base.  Nothing downstream is Panda-specific: it reads a
:class:`RobotSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robolearn.envs.geometry import lookat_quat


@dataclass(frozen=True)
class RobotSpec:
    """Names and constants the env and the experts need about one arm."""

    name: str
    arm_joints: tuple[str, ...]
    arm_actuators: tuple[str, ...]
    gripper_actuator: str
    gripper_ctrl_closed: float  # actuator ctrl for a closed gripper (0 = open)
    gripper_joint: str  # 2F-85 driver joint, 0 (open) .. 0.8 (closed)
    ee_site: str
    gripper_base_body: str
    pad_geoms_left: tuple[str, ...]
    pad_geoms_right: tuple[str, ...]
    home_qpos: tuple[float, ...]
    home_yaw: float  # EE yaw (rad) at which the wrist sits mid-range; experts stay near it
    wrist_camera: str = "wrist"  # model name of the wrist camera
    max_joint_speed: tuple[float, ...] = ()  # rad/s per arm joint (the servo setpoint's rate limit)


PANDA = RobotSpec(
    name="panda",
    arm_joints=tuple(f"joint{i}" for i in range(1, 8)),
    arm_actuators=tuple(f"actuator{i}" for i in range(1, 8)),
    gripper_actuator="fingers_actuator",
    gripper_ctrl_closed=255.0,
    gripper_joint="right_driver_joint",
    ee_site="pinch",
    gripper_base_body="base",
    pad_geoms_left=("left_pad1", "left_pad2"),
    pad_geoms_right=("right_pad1", "right_pad2"),
    home_qpos=(0.0, -0.3, 0.0, -2.2, 0.0, 1.9, 0.785),
    home_yaw=0.0,
    max_joint_speed=(2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61),  # Franka datasheet
)

UR5E = RobotSpec(
    name="ur5e",
    arm_joints=("shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint",
                "wrist_2_joint", "wrist_3_joint"),
    arm_actuators=("shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3"),
    gripper_actuator="gripper/fingers_actuator",
    gripper_ctrl_closed=255.0,
    gripper_joint="gripper/right_driver_joint",
    ee_site="gripper/pinch",
    gripper_base_body="gripper/base",
    pad_geoms_left=("gripper/left_pad1", "gripper/left_pad2"),
    pad_geoms_right=("gripper/right_pad1", "gripper/right_pad2"),
    home_qpos=(0.0, -1.9, 1.9, -1.571, -1.571, 0.0),
    home_yaw=0.0,
    wrist_camera="gripper/wrist",
    max_joint_speed=(3.14, 3.14, 3.14, 3.14, 3.14, 3.14),  # UR5e datasheet: 180 deg/s
)

ROBOTS = {"panda": PANDA, "ur5e": UR5E}


def get_robot(name: str) -> RobotSpec:
    if name not in ROBOTS:
        raise KeyError(f"unknown robot {name!r}; choose one of {sorted(ROBOTS)}")
    return ROBOTS[name]


def _servo(act, kp: float, kv: float, ctrlrange, forcerange) -> None:
    """Turn an actuator into a position servo: force = kp * (ctrl - q) - kv * qdot."""
    import mujoco

    act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
    act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
    act.gainprm = np.r_[kp, np.zeros(len(act.gainprm) - 1)]
    act.biasprm = np.r_[0.0, -kp, -kv, np.zeros(len(act.biasprm) - 3)]
    act.ctrlrange = ctrlrange
    if forcerange is not None:
        act.forcerange = forcerange
    act.forcelimited = int(forcerange is not None)
    act.ctrllimited = 1


def _gravcomp(body) -> None:
    body.gravcomp = 1.0
    for child in body.bodies:
        _gravcomp(child)


def _panda_spec():
    import mujoco

    from robolearn.envs.assets import model_path

    spec = mujoco.MjSpec.from_file(str(model_path("panda")))
    for i, act_name in enumerate(PANDA.arm_actuators):
        act = spec.actuator(act_name)
        joint = spec.joint(PANDA.arm_joints[i])
        lo, hi = joint.range
        # gains as in Menagerie's position-controlled Panda, without its 87/12 Nm clamp: a
        # clamped stiff servo loses its (implicitly integrated) damping and chatters
        # bang-bang when joints 1 and 3 align near the base, where the mode between them
        # has little inertia (measured: the clamp made 3/50 pushes fail).  Setpoints are
        # rate-limited instead (TabletopSim.step), which bounds torques: <= 70 Nm measured
        # under uniformly random joint-target actions.
        kp, kv = (4500.0, 450.0) if i < 4 else (2000.0, 200.0)
        _servo(act, kp, kv, [lo, hi], None)
    _gravcomp(spec.body("link0"))
    _add_wrist_camera(spec.body("base"))
    return spec


def _ur5e_spec():
    import mujoco

    from robolearn.envs.assets import model_path

    spec = mujoco.MjSpec.from_file(str(model_path("ur5e")))
    gripper = mujoco.MjSpec.from_file(str(model_path("2f85")))
    spec.option.impratio = 10.0
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.body("base").quat = [1.0, 0.0, 0.0, 0.0]  # Menagerie turns it 180 deg: face +x instead
    _add_wrist_camera(gripper.body("base"))
    site = spec.site("attachment_site")
    spec.attach(gripper, site=site, prefix="gripper/")
    for light in list(spec.lights):  # Menagerie's spotlight; the scene brings its own
        spec.delete(light)
    for i, act_name in enumerate(UR5E.arm_actuators):
        joint = spec.joint(UR5E.arm_joints[i])
        lo, hi = max(joint.range[0], -2 * np.pi), min(joint.range[1], 2 * np.pi)
        kp, kv, fmax = (2000.0, 400.0, 150.0) if i < 3 else (500.0, 100.0, 28.0)
        _servo(spec.actuator(act_name), kp, kv, [lo, hi], [-fmax, fmax])
    _gravcomp(spec.body("base"))
    return spec


def _add_wrist_camera(body) -> None:
    """A camera on the gripper base, beside the fingers (they close along the base's y),
    looking along the approach axis (+z) at a point just past the fingertips."""
    pos, target = np.array([-0.075, 0.0, 0.03]), np.array([0.0, 0.0, 0.26])
    body.add_camera(name="wrist", pos=pos.tolist(), fovy=80.0,
                    quat=lookat_quat(pos, target, up=(1.0, 0.0, 0.0)).tolist())


def robot_spec(name: str):
    """A fresh ``mujoco.MjSpec`` of arm ``name`` with servos, gravcomp and the wrist camera."""
    from robolearn.envs.assets import require_assets

    require_assets()
    get_robot(name)
    return _panda_spec() if name == "panda" else _ur5e_spec()


def robot_limits(name: str) -> dict[str, list[float]]:
    """Arm joint limits of ``name`` from its model (the URDF-equivalent): ``lower``,
    ``upper`` (rad) and ``max_velocity`` (rad/s, the datasheet speeds), per arm joint."""
    import mujoco

    robot = get_robot(name)
    model = robot_spec(name).compile()
    lo, hi = [], []
    for j in robot.arm_joints:
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, j)
        a, b = model.jnt_range[jid]
        if name == "ur5e":  # as the servos are set up (+-2 pi)
            a, b = max(a, -2 * np.pi), min(b, 2 * np.pi)
        lo.append(float(a))
        hi.append(float(b))
    return {"lower": lo, "upper": hi, "max_velocity": [float(v) for v in robot.max_joint_speed]}
