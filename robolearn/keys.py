"""Key names shared by the store, datasets, policies, envs and ROS nodes.

Every place that reads or writes an episode uses these constants, never string
literals: a renamed key is then one edit, and a typo is an ``AttributeError``
instead of a silent miss.  Keys are dotted in the LeRobot style
(``observation.images.front``).
"""

from __future__ import annotations

OBS = "observation"
OBS_STATE = "observation.state"
#: privileged scene state (object positions) a simulator can record beside the arm's state:
#: never a policy input, only a training target (LeRobot's name for it)
OBS_ENV_STATE = "observation.environment_state"
OBS_IMAGES_PREFIX = "observation.images."
#: privileged labels too: where a camera images each scene object and the end effector,
#: (P, 3) of u, v in 0..1 and an in-view flag per step ("observation.keypoints.<camera>")
OBS_KEYPOINTS_PREFIX = "observation.keypoints."
ACTION = "action"
REWARD = "reward"
DONE = "done"
LANGUAGE = "language"
SKILL = "skill"

#: per-step keys every episode must have (images are optional, any number of cameras)
REQUIRED_STEP_KEYS = (OBS_STATE, ACTION, REWARD, DONE)
#: per-step string annotations (one string per step)
TEXT_STEP_KEYS = (LANGUAGE, SKILL)

# suffix for padding masks produced by the window sampler: "action" -> "action_is_pad"
PAD_SUFFIX = "_is_pad"
# prefix of the future observation window (s_{t+k}) when a sampler asks for one:
# "observation.state" -> "next.observation.state"; NEXT_DONE: the episode ended before t+k
NEXT_PREFIX = "next."
NEXT_DONE = "next.done"
# steps from s_t to the future observation (the horizon k unless the data ended first)
NEXT_STEPS = "next.steps"

# per-episode metadata fields (strings unless noted)
META_TASK = "task"
META_INSTRUCTION = "instruction"
META_SUCCESS = "success"  # bool
META_ROBOT = "robot"
META_FPS = "fps"  # float
META_ACTION_SPACE = "action_space"
META_SOURCE = "source"
META_SEED = "seed"  # int or None
REQUIRED_META = (META_TASK, META_INSTRUCTION, META_SUCCESS, META_ROBOT, META_FPS,
                 META_ACTION_SPACE, META_SOURCE)


def image_key(camera: str) -> str:
    """``"front"`` -> ``"observation.images.front"``."""
    return OBS_IMAGES_PREFIX + camera


def keypoints_key(camera: str) -> str:
    """``"front"`` -> ``"observation.keypoints.front"``."""
    return OBS_KEYPOINTS_PREFIX + camera


def is_image_key(key: str) -> bool:
    return key.startswith(OBS_IMAGES_PREFIX)


def camera_name(key: str) -> str:
    """``"observation.images.front"`` -> ``"front"``."""
    if not is_image_key(key):
        raise ValueError(f"{key!r} is not an image key (expected prefix {OBS_IMAGES_PREFIX!r})")
    return key[len(OBS_IMAGES_PREFIX):]


def pad_key(key: str) -> str:
    return key + PAD_SUFFIX


def next_key(key: str) -> str:
    """``"observation.state"`` -> ``"next.observation.state"``."""
    return NEXT_PREFIX + key
