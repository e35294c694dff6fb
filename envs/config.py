"""Typed configuration of the tabletop sim and of demo collection.

Dataclasses only (cheap to import, no mujoco): hydra registers them as schemas
(``env_schema``, ``collect_schema``) and presets under ``configs/env`` and
``configs/collect`` extend them, so an unknown key is an error at load time.
"""

from __future__ import annotations

from dataclasses import dataclass, field


#: size of the privileged scene state (``EnvConfig.object_state``): 3 cubes, bowl, pad (xyz
#: each) and the drawer's opening
OBJECT_STATE_DIM = 16


@dataclass
class CameraConfig:
    """Learning cameras and the video camera."""

    names: list[str] = field(default_factory=lambda: ["front", "wrist"])
    """Cameras rendered into observations (subset of front, overhead, wrist; empty = state only)."""
    resolution: int = 96
    """Square image size of the learning cameras in pixels (rendering dominates CPU step time)."""
    video_width: int = 320
    """Width of the high-quality video frames returned by render()."""
    video_height: int = 240
    """Height of the high-quality video frames returned by render()."""
    video_camera: str = "front"
    """Camera used by render() for videos and GIFs."""
    high_quality_video: bool = True
    """Shadows and 4x multisampling for video frames (learning cameras never use them)."""


@dataclass
class RandomizationConfig:
    """Domain randomisation, all drawn from the episode seed."""

    object_poses: bool = True
    """Random cube positions/yaws and bowl, pad and cabinet placement."""
    colors: bool = True
    """Jitter object hues/brightness and the table colour (named colours stay recognisable)."""
    lighting: bool = True
    """Random key-light direction and intensity."""
    camera_jitter: float = 0.01
    """Standard deviation (m) of the fixed cameras' position jitter; 0 disables it."""
    pose_jitter: float = 0.0
    """0 = place the cubes anywhere in the table region (and the bowl/pad/cabinet around
    their nominal spots). > 0 = a fixed scene with small perturbations, as LIBERO and
    robomimic benchmarks use: every object at its nominal spot (cubes in a row at x=0.36 m)
    plus uniform +-pose_jitter metres, cube yaws +-yaw_jitter. Needs object_poses."""
    yaw_jitter: float = 0.26
    """Half-range (rad) of the cubes' yaw when pose_jitter > 0 (0.26 = 15 degrees)."""
    drawer_open_prob: float = 0.0
    """Probability that a task whose plan never touches the drawer (Reach, Pick, PickPlace,
    Push, SortBlocks) starts with it open instead of shut, so one store covers manipulating
    beside an open drawer; drawer tasks keep their own start state. Drawn from its own
    stream of the episode seed: object layouts are the same for every value."""


@dataclass
class EnvConfig:
    """A tabletop environment: robot, control, cameras and randomisation."""

    robot: str = "panda"
    """Arm model: panda (Franka Panda + Robotiq 2F-85) or ur5e (UR5e + Robotiq 2F-85)."""
    action_space: str = "joint_pos"
    """joint_pos: absolute arm joint targets + gripper in [0, 1]; ee_delta: scaled EE deltas + gripper."""
    control_hz: float = 10.0
    """Policy/action rate; physics runs at 500 Hz underneath."""
    max_episode_steps: int = 0
    """Time limit in control steps (0 = the task's own default)."""
    ee_delta_pos_scale: float = 0.05
    """Metres of EE translation per unit of an ee_delta action."""
    ee_delta_rot_scale: float = 0.25
    """Radians of EE rotation per unit of an ee_delta action."""
    cameras: CameraConfig = field(default_factory=CameraConfig)
    """Camera settings."""
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    """Domain randomisation settings."""
    object_state: bool = False
    """Append the scene's state to observation.state (each cube's xyz, bowl xyz, pad xyz, drawer opening: 16 values): privileged state for fast state-only learning in sim; a real robot does not have it, so image policies leave it off."""


@dataclass
class CollectConfig:
    """`robolearn-collect`: scripted-expert demonstrations into a Zarr store."""

    tasks: list[str] = field(default_factory=lambda: ["PickPlace"])
    """Task names (a mixture is collected round-robin): see robolearn.envs.tasks.TASKS."""
    episodes: int = 10
    """Episodes to write in total (over all tasks)."""
    out: str = "runs/collect/demos.zarr"
    """Store path or fsspec URL; an existing store is appended to."""
    seed: int = 0
    """Base seed; episode i uses seed + i (so a resumed run can continue the sequence)."""
    noise: float = 0.0
    """Std of Gaussian noise on expert actions, as a fraction of the joint range (0 = clean)."""
    dart: float = 0.0
    """DART: std of Gaussian noise on the *executed* action of every episode (same unit as
    noise), the expert's clean action recorded - demos that show the way back from small
    errors (0 = off)."""
    regrasp: float = 0.0
    """Recovery demos (tabletop tasks): the fraction of expert episodes whose first grasp the
    cube slips out of, so they show the expert noticing the empty gripper and grasping again
    (0 = off)."""
    scene_state: bool = False
    """Also record observation.environment_state, the scene's privileged state (object positions, drawer opening) at every step (tabletop tasks), and observation.keypoints.<camera>, where each learning camera images those objects and the end effector: training targets for auxiliary losses (flow_vla's scene_aux_weight and keypoint scene head), never a policy input."""
    scene_frames: int = 0
    """Perception data, not demonstrations (tabletop tasks, needs scene_state): keep only this many random steps of each expert episode - camera images, arm state and object positions of many layouts, cheap to collect, for pretraining flow_vla's image encoder and scene head (train/flow_vla_perception). The kept steps do not form trajectories, so robolearn-train refuses to learn actions from such a store (0 = keep every step)."""
    noisy_fraction: float = 0.0
    """Fraction of episodes collected with --noise (the rest clean); 1.0 = all, if noise > 0."""
    failed_fraction: float = 0.0
    """Fraction of episodes deliberately sabotaged (wrong target, early release, stopping short)."""
    workers: int = 1
    """Processes collecting at once, each with its own sim. Episodes are still written in seed order, one at a time, so the store is the one a single process writes."""
    gif: bool = True
    """Write one rollout GIF per task into the run folder."""
    gif_dir: str = ""
    """Where GIFs go (empty = beside the store)."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """Environment settings."""
