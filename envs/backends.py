"""Env backends: where a task's env, expert episodes, horizon and report line come from.

``robolearn-collect``, ``robolearn-eval`` and the eval report look every task name up here
(:func:`backend_for`), so a new benchmark is one :func:`register_backend` call, not a
branch in each tool.  Built in:

* ``tabletop``: robolearn's MuJoCo tabletop (:data:`robolearn.envs.tasks.TASKS`);
* ``metaworld``: MetaWorld v3 envs as ``metaworld/<env-name>`` (:mod:`robolearn.envs.metaworld`);
* ``pusht``: gym-pusht's PushT as ``pusht`` (:mod:`robolearn.envs.pusht`).

Importing this module is cheap: each backend imports its simulator when first used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class EnvBackend:
    """One family of tasks and the functions the tools need from it."""

    name: str
    owns: Callable[[str], bool]
    """Whether a task name belongs to this backend."""
    make_eval_env: Callable[..., Any]
    """``(task, **env_kwargs) -> gym.Env`` for the evaluator (``env_kwargs``: the protocol's
    ``EnvConfig`` as a dict); ``info`` must carry ``success`` and the plan keys."""
    make_collect_env: Callable[[str, Any], Any]
    """``(task, EnvConfig) -> env`` that :attr:`rollout` plays experts in (renders GIFs)."""
    rollout: Callable[..., tuple]
    """``(env, seed, quality=, noise=, video=, dart=) -> (steps, meta)``: one expert episode
    (the tabletop's also takes ``regrasp=`` and ``scene_state=``; the collector refuses them
    for the others)."""
    horizon: Callable[[str], int]
    """The default episode horizon of a task (control steps)."""
    video_fps: Callable[[Any], float]
    """Frame rate of the frames :attr:`rollout` appends to ``video`` for an env."""
    describe: Callable[[dict], str]
    """One report line on the env settings the protocol ran (``EnvConfig`` as a dict)."""
    require: Callable[[], None]
    """Raise a clear error with the install command when the simulator is missing."""
    tasks: Callable[[], list[tuple[str, str]]]
    """``(task name, description)`` for ``--list-tasks``."""
    naming: str = ""
    """How its task names are formed, when not only the listed ones (for error messages)."""
    action_space: Callable[[dict], str] = lambda env: ""
    """The action space the env takes under these settings (``EnvConfig`` as a dict), named
    as its collector records it in the store (``action_space`` episode meta); policies
    trained on another one are refused (``robolearn.policies.base.check_action_space``)."""


_BACKENDS: dict[str, EnvBackend] = {}


def register_backend(backend: EnvBackend) -> None:
    _BACKENDS[backend.name] = backend


def backends() -> list[EnvBackend]:
    return list(_BACKENDS.values())


def backend_for(task: str) -> EnvBackend:
    """The backend that owns ``task``, or a ``KeyError`` listing what exists."""
    for b in _BACKENDS.values():
        if b.owns(task):
            return b
    known = []
    for b in _BACKENDS.values():
        names = [n for n, _ in b.tasks()]
        known.append(f"{b.name}: {b.naming or ', '.join(names)}"
                     + (f" (e.g. {', '.join(names[:3])})" if b.naming else ""))
    raise KeyError(f"unknown task {task!r}; known: {'; '.join(known)}")


def backends_for(tasks) -> list[EnvBackend]:
    """The distinct backends of ``tasks``, in order of first use."""
    out: dict[str, EnvBackend] = {}
    for t in tasks:
        b = backend_for(t)
        out.setdefault(b.name, b)
    return list(out.values())


# ----------------------------------------------------------------------------- tabletop
def _tabletop_owns(task: str) -> bool:
    from robolearn.envs.tasks import TASKS

    return task in TASKS


def _tabletop_eval_env(task: str, **env_kwargs):
    from robolearn.envs import make_env
    from robolearn.eval.rollout import PlanProgress

    return PlanProgress(make_env(task, **env_kwargs))


def _tabletop_collect_env(task: str, env_cfg):
    from robolearn.envs.tabletop_env import TabletopEnv

    return TabletopEnv(task, config=env_cfg, render_mode="rgb_array")


def _tabletop_rollout(env, seed: int, **kw):
    from robolearn.envs.demos import rollout

    return rollout(env, seed, **kw)


def _tabletop_horizon(task: str) -> int:
    from robolearn.envs.tasks import get_task

    return get_task(task).max_steps


def _tabletop_describe(env: dict) -> str:
    return (f"tabletop sim: {env['robot']} at {env['control_hz']:g} Hz, action space "
            f"{env['action_space']}, cameras at {env['cameras']['resolution']} px, "
            f"randomisation {env['randomization']}"
            + ("; observation.state includes the object state" if env.get("object_state") else ""))


def _tabletop_require() -> None:
    from robolearn.envs.assets import require_assets

    require_assets()


def _tabletop_tasks() -> list[tuple[str, str]]:
    import numpy as np

    from robolearn.envs.tasks import TASKS

    def example(t) -> str:  # the same example every time: args drawn with seed 0
        return t.instruction(t.sample_args(np.random.default_rng(0)))

    return [(n, f"{t.description}  (e.g. '{example(t)}')") for n, t in TASKS.items()]


# ---------------------------------------------------------------------------- metaworld
def _mw_owns(task: str) -> bool:
    from robolearn.envs.metaworld import is_metaworld

    return is_metaworld(task)


def _mw_eval_env(task: str, **env_kwargs):
    from robolearn.envs.metaworld import MetaWorldEnv

    return MetaWorldEnv(task, **env_kwargs)  # its own horizon (max_episode_steps)


def _mw_collect_env(task: str, env_cfg):
    from robolearn.envs.metaworld import MetaWorldEnv

    return MetaWorldEnv(task, cameras=dataclasses.asdict(env_cfg.cameras),
                        max_episode_steps=env_cfg.max_episode_steps, render_mode="rgb_array")


def _mw_rollout(env, seed: int, **kw):
    from robolearn.envs.metaworld import rollout

    return rollout(env, seed, **kw)


def _mw_horizon(task: str) -> int:
    from robolearn.envs.metaworld import HORIZON

    return HORIZON


def _mw_describe(env: dict) -> str:
    from robolearn.envs.metaworld import HORIZON, N_VARIANTS

    return (f"MetaWorld v3 (its own success flag): Sawyer, 4-D hand delta + gripper at 80 Hz, "
            f"39-D state, task variant = seed % {N_VARIANTS}, horizon {HORIZON} by default")


def _mw_require() -> None:
    from robolearn.envs.metaworld import require_metaworld

    require_metaworld()


def _mw_tasks() -> list[tuple[str, str]]:
    from robolearn.envs.metaworld import MT10, PREFIX, instruction

    return [(PREFIX + n, f"{instruction(n)}  (MetaWorld MT10; any v3 env name works, "
                         f"pip install --no-deps metaworld==3.1.1)") for n in MT10]


def _mw_video_fps(env) -> float:
    from robolearn.envs.metaworld import VIDEO_FPS

    return VIDEO_FPS


register_backend(EnvBackend(
    name="tabletop", owns=_tabletop_owns,
    make_eval_env=_tabletop_eval_env, make_collect_env=_tabletop_collect_env,
    rollout=_tabletop_rollout, horizon=_tabletop_horizon,
    video_fps=lambda env: env.unwrapped.cfg.control_hz, describe=_tabletop_describe,
    require=_tabletop_require, tasks=_tabletop_tasks,
    action_space=lambda env: env["action_space"]))
register_backend(EnvBackend(
    name="metaworld", owns=_mw_owns, make_eval_env=_mw_eval_env,
    make_collect_env=_mw_collect_env, rollout=_mw_rollout, horizon=_mw_horizon,
    video_fps=_mw_video_fps, describe=_mw_describe, require=_mw_require, tasks=_mw_tasks,
    naming="metaworld/<env-name>, any MetaWorld v3 env", action_space=lambda env: "ee_delta"))


# -------------------------------------------------------------------------------- pusht
def _pusht_eval_env(task: str, **env_kwargs):
    from robolearn.envs.pusht import PushTEnv

    return PushTEnv(task, **env_kwargs)


def _pusht_collect_env(task: str, env_cfg):
    from robolearn.envs.pusht import PushTEnv

    return PushTEnv(task, cameras=dataclasses.asdict(env_cfg.cameras),
                    max_episode_steps=env_cfg.max_episode_steps, render_mode="rgb_array")


def _pusht_rollout(env, seed: int, **kw):
    from robolearn.envs.pusht import rollout

    return rollout(env, seed, **kw)


def _pusht_horizon(task: str) -> int:
    from robolearn.envs.pusht import HORIZON

    return HORIZON


def _pusht_describe(env: dict) -> str:
    from robolearn.envs.pusht import HORIZON

    return (f"gym-pusht PushT (its own metric: score = coverage / 0.95 clipped, success = "
            f"coverage > 0.95): 2-D agent target at 10 Hz, 18-D state (agent + 8 T "
            f"keypoints), camera `top` = gym-pusht's render at "
            f"{env.get('cameras', {}).get('resolution', 96)} px, start pose = gym-pusht's "
            f"reset(seed), horizon {HORIZON} by default")


def _pusht_require() -> None:
    from robolearn.envs.pusht import require_pusht

    require_pusht()


def _pusht_tasks() -> list[tuple[str, str]]:
    from robolearn.envs.pusht import INSTRUCTION, TASK

    return [(TASK, f"{INSTRUCTION}  (gym-pusht's PushT, Diffusion Policy's benchmark)")]


register_backend(EnvBackend(
    name="pusht", owns=lambda task: task == "pusht", make_eval_env=_pusht_eval_env,
    make_collect_env=_pusht_collect_env, rollout=_pusht_rollout,
    horizon=_pusht_horizon, video_fps=lambda env: 10.0, describe=_pusht_describe,
    require=_pusht_require, tasks=_pusht_tasks, action_space=lambda env: "xy_target"))
