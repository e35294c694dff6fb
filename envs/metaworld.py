"""MetaWorld (Yu et al.) as a robolearn env backend: collection with MetaWorld's own scripted
experts, evaluation with its own success signal.

Tasks are named ``metaworld/<env-name>``, e.g. ``metaworld/pick-place-v3``; :data:`MT10`
is the MT10 set.  One :class:`MetaWorldEnv` wraps one MetaWorld v3 env class:

* **Task variants.** MetaWorld fixes object and goal positions per *task* (50 per env,
  ``metaworld.MT1(name, seed=0)``); episode seed ``s`` plays variant ``s % 50``, so a seed
  always means the same scene (MetaWorld's MT protocol evaluates on these same 50 variants).
* **Observations** follow robolearn's convention: ``obs["state"]`` is MetaWorld's 39-D
  vector (hand xyz, gripper opening, two object poses, their previous frame, goal xyz) and
  ``obs["images"][cam]`` uint8 (R, R, 3) for the configured cameras (MetaWorld's camera
  names: ``corner``, ``corner2``, ``topview``, ``gripperPOV``, ``behindGripper``; rendered
  upright).  Rendering MetaWorld's meshes costs ~200 ms per 96 px frame on a 2-core CPU,
  so state-only is the practical default here.
* **Actions**: MetaWorld's 4-D (xyz delta of the mocap hand, gripper effort), in [-1, 1].
* **Episodes** end at MetaWorld's ``success`` (terminated) or after ``max_episode_steps``
  (default 500 = MetaWorld's ``max_path_length``); ``info`` carries ``success``,
  ``instruction`` and the one-step plan keys the evaluator reads.  Stores get the sparse
  reward of every robolearn store (1 on the success step), not MetaWorld's shaped one.

MetaWorld 3.1 pins ``mujoco==3.3.0``; robolearn runs MuJoCo 4, whose weld constraints
carry one more ``eq_data`` entry.  :func:`install_compat` (applied on import) fills the
first 11 entries as MetaWorld intends and leaves the new one at zero; MetaWorld's experts
then succeed as published (``benchmarks`` / tests measure it).
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

PREFIX = "metaworld/"
#: the MT10 tasks (v3 names)
MT10 = ["reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3",
        "drawer-close-v3", "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3",
        "window-close-v3"]
#: MetaWorld's sim rate: frame_skip 5 x 2.5 ms = 12.5 ms per action
FPS = 80.0
#: episode horizon unless max_episode_steps says otherwise (MetaWorld's max_path_length)
HORIZON = 500
#: rollout videos keep every 4th frame: real time at 20 fps (a frame costs ~0.2 s to render)
VIDEO_EVERY, VIDEO_FPS = 4, 20.0
N_VARIANTS = 50
STATE_DIM, ACTION_DIM = 39, 4


def is_metaworld(task: str) -> bool:
    return task.startswith(PREFIX)


def env_name(task: str) -> str:
    return task[len(PREFIX):] if is_metaworld(task) else task


def require_metaworld():
    """Import metaworld (with the MuJoCo 4 fix) or fail with the install command."""
    try:
        import metaworld  # noqa: F401
    except ImportError as e:  # scipy or metaworld itself
        raise ImportError(
            f"MetaWorld tasks need the `metaworld` package ({e}); install it with "
            f"`pip install -e '.[benchmarks]' && pip install --no-deps metaworld==3.1.1` "
            f"(make setup does both: metaworld pins an older MuJoCo)") from e
    install_compat()
    import metaworld

    return metaworld


_PATCHED = False


def install_compat() -> None:
    """Make MetaWorld 3.1's mocap weld reset work on MuJoCo >= 3.4 (12 eq_data values)."""
    global _PATCHED
    if _PATCHED:
        return
    import mujoco
    from metaworld import sawyer_xyz_env

    def reset_mocap_welds(self) -> None:
        if self.model.nmocap > 0 and self.model.eq_data is not None:
            for i in range(self.model.eq_data.shape[0]):
                if self.model.eq_type[i] == mujoco.mjtEq.mjEQ_WELD:
                    d = self.model.eq_data[i]
                    d[:] = 0.0
                    d[:11] = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 5.0]

    sawyer_xyz_env.SawyerMocapBase.reset_mocap_welds = reset_mocap_welds
    _PATCHED = True


def instruction(name: str) -> str:
    """A plain-language instruction for a MetaWorld env name ("pick-place-v3" -> "pick and
    place the puck at the goal")."""
    words = {"reach-v3": "reach the goal position", "push-v3": "push the puck to the goal",
             "pick-place-v3": "pick up the puck and place it at the goal",
             "door-open-v3": "open the door", "drawer-open-v3": "open the drawer",
             "drawer-close-v3": "close the drawer",
             "button-press-topdown-v3": "press the button from the top",
             "peg-insert-side-v3": "insert the peg into the hole from the side",
             "window-open-v3": "slide the window open", "window-close-v3": "slide the window closed"}
    return words.get(name, name.removesuffix("-v3").replace("-", " "))


def expert_policy(name: str):
    """MetaWorld's scripted expert for env ``name`` (``obs -> action``), from its own map."""
    from metaworld.policies import ENV_POLICY_MAP

    if name not in ENV_POLICY_MAP:
        raise KeyError(f"metaworld has no scripted expert for {name!r}; it has "
                       f"{sorted(ENV_POLICY_MAP)}")
    return ENV_POLICY_MAP[name]()


class MetaWorldEnv(gym.Env):
    """One MetaWorld env in robolearn's observation/info convention (see the module doc).

    Keyword arguments follow robolearn's ``EnvConfig`` (so the evaluator's protocol passes
    straight through): ``cameras={"names": [...], "resolution": R}`` and
    ``max_episode_steps``; the tabletop-only settings (robot, action space, control rate,
    randomisation) are accepted and ignored, except that asking for another robot or
    action space is an error.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": FPS}

    def __init__(self, task: str, cameras: dict | None = None, max_episode_steps: int = 0,
                 render_mode: str | None = None, robot: str = "", action_space: str = "",
                 **_ignored: Any):
        mw = require_metaworld()
        name = env_name(task)
        if robot not in ("", "sawyer", "panda"):  # panda: the tabletop default, not asked for
            raise ValueError(f"MetaWorld tasks run the Sawyer arm; robot={robot!r} is not "
                             f"available there")
        if action_space not in ("", "ee_delta", "joint_pos"):
            raise ValueError(f"MetaWorld actions are xyz deltas + gripper; action_space="
                             f"{action_space!r} is not available")
        self.task_name, self.name = PREFIX + name, name
        bench = mw.MT1(name, seed=0)
        self.variants = bench.train_tasks
        cams = dict(cameras or {})
        self.cameras = list(cams.get("names", []))
        self.resolution = int(cams.get("resolution", 96))
        self.render_mode = render_mode
        self._env = bench.train_classes[name](render_mode="rgb_array", width=self.resolution,
                                              height=self.resolution)
        self.max_steps = int(max_episode_steps or HORIZON)
        # MetaWorld raises if stepped past its own max_path_length; our horizon rules
        self._env.max_path_length = max(int(self._env.max_path_length), self.max_steps)
        self.instruction = instruction(name)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        spaces = {"state": gym.spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float32)}
        if self.cameras:
            r = self.resolution
            spaces["images"] = gym.spaces.Dict({c: gym.spaces.Box(0, 255, (r, r, 3), np.uint8)
                                                for c in self.cameras})
        self.observation_space = gym.spaces.Dict(spaces)
        self._t, self.variant = 0, 0
        self._last: tuple | None = None  # the final step of an episode that is over

    def _render(self, camera: str) -> np.ndarray:
        self._env.camera_name = camera
        self._env.mujoco_renderer.camera_id = None
        self._env.mujoco_renderer.camera_name = camera
        return np.ascontiguousarray(self._env.render()[::-1])  # MetaWorld renders upside down

    def _obs(self, raw: np.ndarray) -> dict:
        obs = {"state": np.asarray(raw, np.float32)}
        if self.cameras:
            obs["images"] = {c: self._render(c) for c in self.cameras}
        return obs

    def _info(self, success: bool) -> dict:
        return {"success": bool(success), "instruction": self.instruction,
                "plan_step": int(success), "plan_length": 1,
                "plan_instruction": self.instruction, "plan_skills": self.name,
                "variant": self.variant}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.variant = int(seed or 0) % len(self.variants)
        self._env.set_task(self.variants[self.variant])
        raw, _ = self._env.reset()
        self._t, self._last = 0, None
        return self._obs(raw), self._info(False)

    def step(self, action):
        if self._last is not None:
            # the episode is over (a vector env keeps stepping idle workers): stay put
            obs, _, term, trunc, info = self._last
            return obs, 0.0, term, trunc, info
        a = np.clip(np.asarray(action, np.float32), -1.0, 1.0)
        raw, reward, _, _, info = self._env.step(a)
        self._t += 1
        success = bool(info.get("success", 0.0))
        truncated = self._t >= self.max_steps and not success
        out = (self._obs(raw), float(reward), success, truncated, self._info(success))
        if success or truncated:
            self._last = out
        return out

    def render(self):
        return self._render(self.cameras[0] if self.cameras else "corner")

    def close(self):
        self._env.close()


def rollout(env: MetaWorldEnv, seed: int, quality: str = "expert", noise: float = 0.0,
            max_steps: int | None = None, video: list | None = None,
            options: dict | None = None, dart: float = 0.0) -> tuple[dict, dict]:
    """One MetaWorld expert episode as store records (the tabletop ``rollout``'s contract).

    ``noisy``: Gaussian noise of std ``noise`` on every action (the expert stays closed
    loop); ``failed`` (``meta["failure_mode"]``, as the tabletop's): ``offset`` shows the
    expert the object and the goal 8-12 cm off where they are (it grasps and pushes in the
    wrong place until the horizon), ``stop_short`` cuts the episode 20-60% of the way
    through the expert's typical length.  ``reward`` is sparse, as in every robolearn
    store: 1 on the step MetaWorld reports success (the episode ends there), else 0;
    ``success`` is what MetaWorld measured.  ``dart > 0``: noise of that std on the executed
    action only, the expert's action recorded (DART, as the tabletop's)."""
    from robolearn import keys as K
    from robolearn.envs.records import dart_noise, single_task_steps

    rng = np.random.default_rng([seed, 7919])
    perturb = dart_noise(seed, dart, -1, 1)
    pol = expert_policy(env.name)
    max_steps = max_steps or env.max_steps
    failure_mode = str(rng.choice(["offset", "stop_short"])) if quality == "failed" else None
    cut = int(rng.uniform(0.2, 0.6) * 100) if failure_mode == "stop_short" else None
    shift = np.zeros(STATE_DIM, np.float32)
    if failure_mode == "offset":  # object (dims 4:7) and goal (last 3) seen off target
        ang = rng.uniform(0, 2 * np.pi)
        off = rng.uniform(0.08, 0.12) * np.array([np.cos(ang), np.sin(ang), 0.0])
        shift[4:7] = shift[-3:] = off
    obs, info = env.reset(seed=seed)
    rec: dict[str, list] = {k: [] for k in ("state", "action", "reward", "images")}
    if video is not None:
        video.append(env.render())
    success = False
    for t in range(max_steps):
        a = np.asarray(pol.get_action(obs["state"] + shift), np.float32)
        if quality == "noisy" and noise > 0:
            a = np.clip(a + rng.normal(0, noise, a.shape), -1, 1).astype(np.float32)
        rec["state"].append(obs["state"])
        rec["images"].append(obs.get("images", {}))
        obs, _, term, trunc, info = env.step(perturb(a))
        rec["action"].append(a)
        success = bool(info["success"])
        rec["reward"].append(float(success))
        if video is not None and (t + 1) % VIDEO_EVERY == 0:
            video.append(env.render())
        if term or trunc or (cut is not None and t + 1 >= cut):
            break
    steps = single_task_steps(rec, env.instruction, env.name, env.cameras)
    meta = {K.META_TASK: env.task_name, K.META_INSTRUCTION: env.instruction,
            K.META_SUCCESS: bool(success), K.META_ROBOT: "sawyer", K.META_FPS: FPS,
            K.META_ACTION_SPACE: "ee_delta", K.META_SOURCE: "metaworld/scripted_expert",
            K.META_SEED: int(seed), "quality": quality,
            "failure_mode": failure_mode,
            "noise": float(noise) if quality == "noisy" else 0.0, "dart": float(dart),
            "variant": env.variant,
            "env_id": f"Meta-World/MT1:{env.name}"}
    return steps, meta
