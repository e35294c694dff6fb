"""Policy rollouts in the sim: parallel episodes, batched chunked inference, per-trial results.

:func:`evaluate` runs ``trials`` episodes of every task with a fixed protocol
(:class:`robolearn.eval.config.EvalProtocol`).  Episodes run in a gymnasium
``AsyncVectorEnv`` with autoreset disabled, so each worker is reset explicitly with the
next trial's seed when its episode ends: trial ``j`` always sees the scene of seed
``seed + j``, whatever ``num_envs`` is.

:class:`ChunkExecutor` is the policy side: one observation history and one action queue per
env; whenever queues run empty, the envs that need a new chunk are batched into one
``predict_action_chunk`` call and the first ``n_action_steps`` actions are queued.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

from robolearn import keys as K
from robolearn.control.window import window_batch

PLAN_STEP = "plan_step"
PLAN_INSTRUCTION = "plan_instruction"
PLAN_LENGTH = "plan_length"
PLAN_SKILLS = "plan_skills"


# ---------------------------------------------------------------- env side (runs in workers)
def make_eval_env(task: str, **env_kwargs):
    """The env of ``task`` from its backend (:mod:`robolearn.envs.backends`): the tabletop's
    ``make_env`` + :class:`PlanProgress`, MetaWorld's env, ... (picklable entry point for
    vector-env workers)."""
    from robolearn.envs.backends import backend_for

    return backend_for(task).make_eval_env(task, **env_kwargs)


def task_max_steps(task: str) -> int:
    """The default episode horizon of ``task`` (any backend)."""
    from robolearn.envs.backends import backend_for

    return backend_for(task).horizon(task)


class PlanProgress(gym.Wrapper):
    """Track which step of the task's plan the episode is at.

    After every step the plan steps whose success checks hold are passed (in order, never
    backwards), and ``info`` carries ``plan_step`` (steps done), ``plan_length``,
    ``plan_skills`` and ``plan_instruction`` (the skill instruction of the current step:
    what a skill-annotated policy is told, exactly as the collectors annotate demos).
    """

    def reset(self, **kw):
        obs, info = self.env.reset(**kw)
        self._plan = self.env.unwrapped.task.plan(self.env.unwrapped.task_args)
        self._done = 0
        return obs, self._annotate(info)

    def step(self, action):
        from robolearn.envs.skills import check_skill

        obs, reward, terminated, truncated, info = self.env.step(action)
        sim = self.env.unwrapped.sim
        while self._done < len(self._plan) and check_skill(sim, *self._plan[self._done]):
            self._done += 1
        if info.get("success"):
            self._done = len(self._plan)
        return obs, reward, terminated, truncated, self._annotate(info)

    def _annotate(self, info: dict) -> dict:
        from robolearn.envs.tasks import step_instruction

        cur = self._plan[min(self._done, len(self._plan) - 1)]
        return {**info, PLAN_STEP: self._done, PLAN_LENGTH: len(self._plan),
                PLAN_INSTRUCTION: step_instruction(*cur),
                PLAN_SKILLS: ",".join(name for name, _ in self._plan)}


# ---------------------------------------------------------------- policy side
def check_state_dim(env_dim: int, policy, task: str) -> None:
    """Fail before the first step when the env's state is not the policy's (e.g. a policy
    trained with the tabletop's object state evaluated without ``env.object_state``)."""
    from robolearn.envs.config import OBJECT_STATE_DIM

    want = int(getattr(policy.config, "state_dim", 0) or 0)
    if want and env_dim != want:
        hint = (" - set env.object_state=true (it was trained with the object state)"
                if want == env_dim + OBJECT_STATE_DIM else
                " - set env.object_state=false" if env_dim == want + OBJECT_STATE_DIM else
                "; evaluate with the env settings (robot, object_state) it was trained with")
        raise ValueError(f"{task}: the env gives a {env_dim}-D observation.state but the policy "
                         f"reads {want}-D{hint}")


def env_obs_to_policy(obs: dict, cameras: list[str]) -> dict[str, np.ndarray]:
    """A (batched) env observation -> store keys: ``observation.state`` (N, D) and
    ``observation.images.<cam>`` uint8 (N, 3, R, R), laid out exactly as the collectors
    write them (``robolearn.envs.demos.state_vector``)."""
    from robolearn.envs.demos import state_vector

    # backends with their own state layout (MetaWorld) hand it over ready-made
    out = {K.OBS_STATE: obs["state"].astype(np.float32) if "state" in obs else state_vector(obs)}
    for cam in cameras:
        out[K.image_key(cam)] = np.ascontiguousarray(np.moveaxis(obs["images"][cam], -1, -3))
    return out


class ChunkExecutor:
    """Per-env observation history and action queue around one policy (batched inference)."""

    def __init__(self, policy, num_envs: int, n_action_steps: int | None = None):
        self.policy = policy
        c = policy.config
        self.n_obs, self.horizon = c.n_obs, c.horizon
        self.n_action_steps = n_action_steps or c.n_action_steps
        if not 1 <= self.n_action_steps <= self.horizon:
            raise ValueError(f"n_action_steps must be in [1, horizon={self.horizon}], "
                             f"got {self.n_action_steps}")
        self.num_envs = num_envs
        self.history = [deque(maxlen=self.n_obs) for _ in range(num_envs)]
        self.queues: list[deque] = [deque() for _ in range(num_envs)]
        self.chunk_ms: list[float] = []  # wall time of every predict call (batched)

    def reset(self, i: int) -> None:
        self.history[i].clear()
        self.queues[i].clear()

    def observe(self, i: int, step: dict[str, np.ndarray]) -> None:
        self.history[i].append(step)

    def drop_queue(self, i: int) -> None:
        """Forget queued actions (e.g. when the instruction changes mid-chunk)."""
        self.queues[i].clear()

    @torch.no_grad()
    def act(self, active: list[int], language: list[str]) -> dict[int, np.ndarray]:
        """One action per active env; envs with empty queues get new chunks in one batch."""
        need = [i for i in active if not self.queues[i]]
        if need:
            batch = window_batch([self.history[i] for i in need], self.n_obs,
                                 [language[i] for i in need])
            t0 = time.perf_counter()
            chunk = self.policy.predict_action_chunk(self.policy.on_device(batch))
            self.chunk_ms.append((time.perf_counter() - t0) * 1000.0)
            chunk = chunk.float().cpu().numpy()
            for row, i in enumerate(need):
                self.queues[i].extend(chunk[row, : self.n_action_steps])
        return {i: self.queues[i].popleft() for i in active}


# ---------------------------------------------------------------- results
@dataclass
class Trial:
    task: str
    trial: int
    seed: int
    success: bool
    steps: int
    plan_steps_done: int
    plan_length: int
    instruction: str
    skills: list[str] = field(default_factory=list)
    video: str = ""
    score: float | None = None
    """The best of the env's own per-step metric (``info["score"]``) over the episode, for
    envs that report one (PushT: coverage); None otherwise."""
    sim_unstable: str = ""
    """Why the physics went unstable, when that ended the episode (counted as a failure)."""
    reflex_steps: int = 0
    """Steps on which the sim's contact reflex stopped the arm pressing into a fixture."""

    def skill_outcomes(self) -> list[tuple[str, bool]]:
        """(skill, succeeded) for every plan step the episode reached."""
        return [(name, i < self.plan_steps_done) for i, name in enumerate(self.skills)
                if i <= self.plan_steps_done]


@dataclass
class TaskResult:
    task: str
    trials: list[Trial] = field(default_factory=list)
    chunk_ms: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.trials)

    @property
    def successes(self) -> int:
        return sum(t.success for t in self.trials)

    def summary(self) -> dict[str, Any]:
        from robolearn.eval.report import mean_interval, wilson_interval

        lo, hi = wilson_interval(self.successes, self.n)
        ok = [t.steps for t in self.trials if t.success]
        scores = [t.score for t in self.trials if t.score is not None]
        out = {"task": self.task, "trials": self.n, "successes": self.successes,
               "success_rate": self.successes / max(self.n, 1), "ci95": [lo, hi],
               "mean_steps_success": float(np.mean(ok)) if ok else None,
               "plan_progress": float(np.mean([t.plan_steps_done / max(t.plan_length, 1)
                                               for t in self.trials])) if self.trials else 0.0}
        if scores:  # the env's own metric: mean over episodes of the episode's best
            out["mean_score"] = float(np.mean(scores))
            out["score_ci95"] = list(mean_interval(scores))
        return out


# ---------------------------------------------------------------- the loop
def _hold_action(obs: dict, i: int, action_space: str, action_dim: int) -> np.ndarray:
    """Keep an idle worker still (its episode is over, its trial recorded)."""
    if "state" in obs:  # benchmark envs (MetaWorld, PushT) ignore actions once over
        return np.zeros(action_dim, np.float32)
    if action_space == "joint_pos":
        return np.r_[obs["joint_pos"][i], obs["gripper"][i]].astype(np.float32)
    return np.r_[np.zeros(6), obs["gripper"][i]].astype(np.float32)


def _frame(obs: dict, i: int, cameras: list[str]) -> np.ndarray:
    """The policy's view of env i: its cameras side by side, scaled 2x."""
    im = np.concatenate([obs["images"][c][i] for c in cameras], axis=1)
    return np.repeat(np.repeat(im, 2, axis=0), 2, axis=1)


def env_kwargs_for(protocol, policy) -> dict[str, Any]:
    """Env overrides: the protocol's env config, cameras taken from the policy's image keys."""
    env = asdict(protocol.env)
    cams = [K.camera_name(k) for k in policy.config.image_keys]
    env["cameras"]["names"] = cams
    return env


def evaluate_task(policy, task: str, protocol, video_dir: str | Path | None = None,
                  progress: Callable[[Trial], None] | None = None) -> TaskResult:
    """Run ``protocol.trials`` episodes of ``task`` and return their results."""
    import functools

    from robolearn.envs.backends import backend_for
    from robolearn.policies.base import check_action_space
    from robolearn.utils.video import write_gif

    protocol.validate()
    env_kw = env_kwargs_for(protocol, policy)
    check_action_space(policy, backend_for(task).action_space(env_kw), task)
    cameras = env_kw["cameras"]["names"]
    max_steps = protocol.max_steps or task_max_steps(task)
    env_kw["max_episode_steps"] = max_steps  # gym.make's TimeLimit
    n_envs = min(protocol.num_envs, protocol.trials)
    fns = [functools.partial(make_eval_env, task, **env_kw)
           for _ in range(n_envs)]
    venv = gym.vector.AsyncVectorEnv(fns, context="spawn",
                                     autoreset_mode=gym.vector.AutoresetMode.DISABLED)
    result = TaskResult(task)
    ex = ChunkExecutor(policy, n_envs, protocol.n_action_steps or None)
    policy.eval()
    try:
        next_trial = 0
        trial_of = [-1] * n_envs
        steps = np.zeros(n_envs, int)
        reflexes = np.zeros(n_envs, int)  # contact-reflex steps of the running episodes
        lang = [""] * n_envs
        frames: dict[int, list] = {}
        info_of: list[dict] = [{} for _ in range(n_envs)]
        best: list[float | None] = [None] * n_envs  # best info["score"] of each episode
        action_dim = int(np.prod(venv.single_action_space.shape))

        # videos show the policy's view; a state-only policy's show the env's own render
        video_fps = float(venv.metadata.get("render_fps") or protocol.env.control_hz)

        def views(o: dict, idx) -> dict[int, np.ndarray | None]:
            """Video frames of envs ``idx`` (one render call for all of them)."""
            if cameras:
                return {i: _frame(o, i, cameras) for i in idx}
            if not idx:
                return {}
            ims = venv.call("render")  # None: the env renders no video (tabletop, state only)
            return {i: None if ims[i] is None else np.asarray(ims[i]) for i in idx}

        def track(i: int, row: dict) -> None:
            if "score" in row:
                best[i] = max(float(row["score"]), best[i] if best[i] is not None else -np.inf)

        def start(mask: np.ndarray, obs_info=None):
            nonlocal next_trial
            seeds = [None] * n_envs
            for i in np.flatnonzero(mask):
                trial_of[i] = next_trial
                seeds[i] = protocol.seed + next_trial
                next_trial += 1
            obs, info = venv.reset(seed=seeds, options={"reset_mask": mask})
            for i in np.flatnonzero(mask):
                ex.reset(i)
                steps[i] = reflexes[i] = 0
                info_of[i] = _info_row(info, i)
                best[i] = None
                track(i, info_of[i])
                lang[i] = _language(protocol.language, info_of[i])
            filmed = [i for i in np.flatnonzero(mask) if trial_of[i] < protocol.videos]
            for i, im in views(obs, filmed).items():
                if im is not None:
                    frames[i] = [im]
            return obs

        first = np.zeros(n_envs, bool)
        first[: min(n_envs, protocol.trials)] = True
        obs = start(first)
        active = set(np.flatnonzero(first).tolist())
        check_state_dim(env_obs_to_policy(obs, [])[K.OBS_STATE].shape[-1], policy, task)
        while active:
            step_obs = env_obs_to_policy(obs, cameras)
            for i in active:
                ex.observe(i, {k: v[i] for k, v in step_obs.items()})
            acts = ex.act(sorted(active), lang)
            batch = np.stack([acts[i] if i in active else
                              _hold_action(obs, i, protocol.env.action_space, action_dim)
                              for i in range(n_envs)]).astype(np.float32)
            obs, _, terminated, truncated, info = venv.step(batch)
            finished = np.zeros(n_envs, bool)
            shot = views(obs, [i for i in sorted(active) if i in frames])
            for i in sorted(active):
                steps[i] += 1
                row = _info_row(info, i)
                info_of[i] = row
                reflexes[i] += bool(row.get("contact_reflex", False))
                track(i, row)
                if i in shot:
                    if shot[i] is None:
                        frames.pop(i)
                    else:
                        frames[i].append(shot[i])
                new_lang = _language(protocol.language, row)
                if new_lang != lang[i]:  # next plan step: stop executing the old chunk
                    lang[i] = new_lang
                    ex.drop_queue(i)
                if terminated[i] or truncated[i] or steps[i] >= max_steps:
                    finished[i] = True
                    t = Trial(task, trial_of[i], protocol.seed + trial_of[i],
                              bool(row.get("success", False)), int(steps[i]),
                              int(row.get(PLAN_STEP, 0)), int(row.get(PLAN_LENGTH, 1)),
                              str(row.get("instruction", "")),
                              [x for x in str(row.get(PLAN_SKILLS, "")).split(",") if x],
                              score=best[i], sim_unstable=str(row.get("sim_unstable", "")),
                              reflex_steps=int(reflexes[i]))
                    if i in frames and video_dir is not None:
                        name = f"{task.replace('/', '_')}_trial{t.trial:03d}_{'success' if t.success else 'fail'}.gif"
                        t.video = str(write_gif(Path(video_dir) / name, frames.pop(i),
                                                video_fps))
                    frames.pop(i, None)
                    result.trials.append(t)
                    if progress is not None:
                        progress(t)
            restart = np.zeros(n_envs, bool)
            for i in np.flatnonzero(finished):
                if next_trial + restart.sum() < protocol.trials:  # trials left to hand out
                    restart[i] = True
                else:
                    active.discard(int(i))
            if restart.any():
                obs = _merge_obs(obs, start(restart), restart)
    finally:
        venv.close()
    result.trials.sort(key=lambda t: t.trial)
    result.chunk_ms = ex.chunk_ms
    return result


def _merge_obs(old: dict, new: dict, mask: np.ndarray) -> dict:
    """Observations of the envs just reset (``mask``) replace the old ones."""
    out = {}
    for k, v in old.items():
        if isinstance(v, dict):
            out[k] = _merge_obs(v, new[k], mask)
        else:
            out[k] = np.where(mask.reshape((-1,) + (1,) * (v.ndim - 1)), new[k], v)
    return out


def _info_row(info: dict, i: int) -> dict:
    """Env i's entries of a vector env's info dict (entries it did not set are skipped)."""
    row = {}
    for k, v in info.items():
        if k.startswith("_"):
            continue
        present = info.get("_" + k)
        if present is not None and not present[i]:
            continue
        row[k] = _info_row(v, i) if isinstance(v, dict) else v[i]
    return row


def _language(mode: str, info: dict) -> str:
    if mode == "plan":
        return str(info.get(PLAN_INSTRUCTION, info.get("instruction", "")))
    return str(info.get("instruction", ""))
