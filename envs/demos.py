"""Scripted-expert episodes as store-ready records (used by ``robolearn-collect`` and the demo).

One episode = reset with a seed, run the task's skill plan through the experts, and record
per step: camera images, ``observation.state`` (joint positions, gripper closure, EE
pose), the action actually sent, reward, done, and which skill/instruction was active.

Quality labels (``meta["quality"]``), so offline RL gets mixed data on purpose:

* ``expert``: the clean scripted expert.
* ``noisy``: Gaussian noise on every executed action (std = ``noise`` x joint range); the
  expert stays closed-loop, so most still succeed, with visibly worse motion.
* ``dart`` (any quality, ``dart > 0``): DART (Laskey et al. 2017) - Gaussian noise of std
  ``dart`` x the noise unit (joint range; 1 for EE deltas) on every *executed* action while
  the *recorded* action stays the expert's, so the store shows the states a slightly-off
  policy visits, each labelled with the expert's way back onto its path (the servos pull
  the arm back next step).
* ``regrasp`` (expert episodes, ``regrasp > 0``): the cube slips out of the first grasp and
  the expert grasps again (its pick retries whenever the lift shows no cube).
* ``failed``: deliberately sabotaged (``meta["failure_mode"]``): ``offset`` shifts every
  expert target 8-12 cm sideways (grasps miss, places land off target), ``stop_short``
  abandons the last skill 20-60% of the way in.  ``success`` is always what the check measured.
"""

from __future__ import annotations

import contextlib

import numpy as np

from robolearn import keys as K
from robolearn.envs.records import dart_noise
from robolearn.envs.skills import ExpertContext, expert_actions
from robolearn.envs.tasks import step_instruction

QUALITIES = ("expert", "noisy", "failed")
STATE_LAYOUT = ("joint_pos", "gripper", "ee_pose")
#: rough expert length of each skill in control steps at 10 Hz (for stop_short sabotage)
TYPICAL_STEPS = {"reach": 10, "pick": 32, "place": 26, "push": 60, "open_drawer": 42,
                 "close_drawer": 42}


def state_layout(obs: dict) -> tuple[str, ...]:
    """The observation keys ``observation.state`` concatenates: :data:`STATE_LAYOUT`, and
    ``objects`` when the env gives the scene's state (``EnvConfig.object_state``)."""
    return STATE_LAYOUT + (("objects",) if "objects" in obs else ())


def state_vector(obs: dict) -> np.ndarray:
    """``observation.state``: joint_pos (n), gripper (1), ee_pose (7) [, objects (16)] ->
    float32 (..., n + 8 [+ 16]) (batched observations of a vector env work too)."""
    return np.concatenate([obs[k] for k in state_layout(obs)], axis=-1).astype(np.float32)


#: control steps the expert keeps acting, and being recorded, after the task succeeded.
#: A place succeeds on the first step the gripper opens, so without a tail every demo held
#: exactly one "let go" action (1 step in ~50) and policies learned to hover with the cube.
SUCCESS_TAIL = 10


def choose_quality(rng: np.random.Generator, noise: float, noisy_fraction: float,
                   failed_fraction: float) -> str:
    u = rng.uniform()
    if u < failed_fraction:
        return "failed"
    if noise > 0 and u < failed_fraction + noisy_fraction:
        return "noisy"
    return "expert"


@contextlib.contextmanager
def _images_deferred(base, defer: bool):
    """While ``defer``: the env's observations leave out the camera images (a rollout that
    keeps a few steps renders those afterwards, from sim snapshots)."""
    if not defer:
        yield
        return
    base.observe_images = False
    try:
        yield
    finally:
        base.observe_images = True


def rollout(env, seed: int, quality: str = "expert", noise: float = 0.0,
            max_steps: int | None = None, video: list | None = None,
            options: dict | None = None, success_tail: int = SUCCESS_TAIL,
            dart: float = 0.0, regrasp: float = 0.0,
            scene_state: bool = False, scene_frames: int = 0) -> tuple[dict, dict]:
    """Run one expert episode in ``env`` (a ``TabletopEnv``, possibly wrapped).

    Returns ``(steps, meta)`` ready for ``TrajectoryStore.append_episode``.  If ``video`` is
    a list, the env's ``render()`` frames are appended to it.  After the task's success the
    expert goes on for ``success_tail`` steps (its release and retreat; the env's reward stays
    1 while the success holds), then the episode ends; ``success`` is the check at the end.
    ``regrasp``: the fraction of episodes whose first grasp the cube slips out of (4-5 cm
    across the fingers as they close), so they show the expert lifting an empty gripper,
    opening and grasping again (``meta["regrasp"]``).
    ``scene_state``: also record ``observation.environment_state``, the scene's privileged
    state at each observation (cube, bowl and pad positions, drawer opening; 16 values), and
    ``observation.keypoints.<camera>``, where each learning camera images those objects and
    the end effector ((6, 3): u, v, in view): training targets for auxiliary losses, never a
    policy input.
    ``scene_frames > 0``: perception data - keep only that many random steps (with the scene
    state); ``meta["scene_frames"]`` marks the episode, whose kept steps are no trajectory.
    """
    scene_state = scene_state or scene_frames > 0
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {QUALITIES}, got {quality!r}")
    base = env.unwrapped
    task = base.task
    max_steps = max_steps or base.cfg.max_episode_steps or task.max_steps
    rng = np.random.default_rng([seed, 7919])  # sabotage/noise stream, separate from the scene
    # perception frames: render only the kept steps, afterwards, from snapshots of the sim
    # (rendering every step was over half of the collection time)
    defer = scene_frames > 0 and bool(base.cfg.cameras.names)
    with _images_deferred(base, defer):
        obs, info = env.reset(seed=seed, options=options)
        failure_mode, offset, cut_fraction = None, None, None
        if quality == "failed":
            failure_mode = str(rng.choice(["offset", "stop_short"]))
            if failure_mode == "offset":
                a = rng.uniform(0, 2 * np.pi)
                offset = rng.uniform(0.08, 0.12) * np.array([np.cos(a), np.sin(a), 0.0])
            else:  # abandon the last skill 20-60% of the way in
                cut_fraction = rng.uniform(0.2, 0.6)
        ctx = ExpertContext(base.sim, offset=offset)
        slip_rng = np.random.default_rng([seed, 2749])  # its own stream: scenes/noise unchanged
        if quality == "expert" and slip_rng.uniform() < regrasp:
            ctx.slip = float(slip_rng.choice([-1.0, 1.0]) * slip_rng.uniform(0.04, 0.05))
        slipped = bool(ctx.slip)
        noise_scale = _noise_scale(base) * noise if quality == "noisy" else None
        low, high = base.action_space.low, base.action_space.high
        perturb = dart_noise(seed, _noise_scale(base) * dart, low, high)
        rec = {k: [] for k in ("images", "state", "scene", "keypoints", "action", "reward",
                               "done", "lang", "skill")}
        if scene_state:
            from robolearn.envs.tabletop_env import object_keypoints, object_state
        if video is not None:
            video.append(env.render())
        t, ended, tail_left = 0, False, None
        plan = task.plan(base.task_args)
        for n_skill, (skill, args) in enumerate(plan):
            lang = step_instruction(skill, args)
            stop_at = None
            if cut_fraction is not None and n_skill == len(plan) - 1:
                stop_at = t + max(1, int(cut_fraction * TYPICAL_STEPS[skill]))
            label = f"{skill}({','.join(f'{v}' for v in args.values())})"
            for action in expert_actions(env, skill, args, ctx):
                if noise_scale is not None:
                    action = np.clip(action + rng.normal(0, 1, action.shape) * noise_scale,
                                     low, high).astype(np.float32)
                rec["images"].append(base.sim.snapshot() if defer else obs.get("images", {}))
                rec["state"].append(state_vector(obs))
                if scene_state:
                    rec["scene"].append(object_state(base.sim))
                    rec["keypoints"].append(object_keypoints(base.sim, base.cfg.cameras.names,
                                                             rec["scene"][-1]))
                # DART: perturb what runs, record what the expert asked for
                obs, reward, terminated, truncated, info = env.step(perturb(action))
                t += 1
                if tail_left is not None:
                    tail_left -= 1
                elif terminated:  # success: keep recording the expert's release/retreat a while
                    tail_left = success_tail
                ended = ((tail_left is not None and tail_left <= 0) or truncated or t >= max_steps
                         or (stop_at is not None and t >= stop_at))
                rec["action"].append(np.asarray(action, np.float32))
                rec["reward"].append(reward)
                rec["done"].append(bool(ended))
                rec["lang"].append(lang)
                rec["skill"].append(label)
                if video is not None:
                    video.append(env.render())
                if ended:
                    break
            if ended:
                break
    if not rec["action"]:
        raise RuntimeError(f"{task.name} seed {seed}: the expert produced no steps")
    rec["done"][-1] = True
    success = bool(task.success(base.sim, base.task_args))
    steps = {K.OBS_STATE: np.stack(rec["state"]), K.ACTION: np.stack(rec["action"]),
             K.REWARD: np.asarray(rec["reward"], np.float32),
             K.DONE: np.asarray(rec["done"], bool), K.LANGUAGE: rec["lang"],
             K.SKILL: rec["skill"]}
    if scene_state:
        steps[K.OBS_ENV_STATE] = np.stack(rec["scene"])
        for cam in base.cfg.cameras.names:
            steps[K.keypoints_key(cam)] = np.stack([kp[cam] for kp in rec["keypoints"]])
    images = rec["images"]
    if scene_frames > 0:  # labelled frames for perception, spread over the whole episode
        n = len(steps[K.ACTION])
        keep = np.sort(np.random.default_rng([seed, 4099]).choice(
            n, min(scene_frames, n), replace=False))
        steps = {k: ([v[i] for i in keep] if isinstance(v, list) else v[keep])
                 for k, v in steps.items()}
        steps[K.DONE] = np.arange(len(keep)) == len(keep) - 1
        images = [base.images_of(images[i]) if defer else images[i] for i in keep]
    for cam in base.cfg.cameras.names:
        steps[K.image_key(cam)] = np.stack([im[cam] for im in images])
    meta = {K.META_TASK: task.name, K.META_INSTRUCTION: base.instruction,
            K.META_SUCCESS: success, K.META_ROBOT: base.cfg.robot,
            K.META_FPS: float(base.cfg.control_hz), K.META_ACTION_SPACE: base.cfg.action_space,
            K.META_SOURCE: "sim/scene_frames" if scene_frames > 0 else "sim/scripted_expert",
            K.META_SEED: int(seed), "scene_frames": int(scene_frames),
            "quality": quality, "failure_mode": failure_mode,
            "noise": float(noise) if quality == "noisy" else 0.0, "dart": float(dart),
            "regrasp": slipped, "task_args": dict(base.task_args), "plan": [[s, a] for s, a in
                                                        task.plan(base.task_args)],
            "state_layout": {k: int(np.asarray(obs[k]).shape[0]) for k in state_layout(obs)},
            "final_symbolic_state": info["symbolic_state"]["facts"], "env_id":
            f"robolearn/{task.name}-v0"}
    return steps, meta


def _noise_scale(base) -> np.ndarray:
    """Per-dimension noise unit: the joint range for joint targets, 1 for EE deltas; the
    gripper channel is left clean (noise there only toggles the grasp)."""
    low, high = base.action_space.low.astype(float), base.action_space.high.astype(float)
    scale = (high - low) if base.cfg.action_space == "joint_pos" else np.ones_like(low)
    scale[-1] = 0.0
    return scale
