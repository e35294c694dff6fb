"""robolearn.envs: MuJoCo tabletop scenes with real arms, tasks with language, scripted
experts, domain randomisation and gymnasium registration.

Importing this package registers one gymnasium id per task, ``robolearn/<Task>-v0``
(see :data:`robolearn.envs.tasks.TASKS`)::

    import gymnasium as gym
    import robolearn.envs  # noqa: F401  (registers the ids)
    env = gym.make("robolearn/PickPlace-v0", robot="ur5e", cameras={"resolution": 128})

Robot models are installed at setup time: ``python -m robolearn.envs.assets``.
Rendering is headless: ``MUJOCO_GL`` defaults to ``egl`` here (set before mujoco loads).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

ENTRY_POINT = "robolearn.envs.tabletop_env:TabletopEnv"


def env_id(task: str) -> str:
    return f"robolearn/{task}-v0"


def register_all() -> list[str]:
    """Register ``robolearn/<Task>-v0`` for every task (idempotent); return the ids."""
    import gymnasium as gym

    from robolearn.envs.tasks import TASKS

    ids = []
    for name, task in TASKS.items():
        eid = env_id(name)
        if eid not in gym.registry:
            gym.register(id=eid, entry_point=ENTRY_POINT, kwargs={"task": name},
                         max_episode_steps=task.max_steps)
        ids.append(eid)
    return ids


ENV_IDS = register_all()


def make_env(task: str, **kwargs):
    """``gym.make("robolearn/<task>-v0", **kwargs)`` (time limit + checker wrappers)."""
    import gymnasium as gym

    return gym.make(env_id(task), **kwargs)


def make_vec_env(task: str, num_envs: int = 2, context: str = "spawn", seed: int | None = None,
                 **kwargs):
    """An ``AsyncVectorEnv`` of ``num_envs`` workers running task ``task``.

    Uses ``spawn`` (or ``forkserver``): with ``fork``, a worker forked after the parent has
    rendered inherits llvmpipe's threads in a broken state and hangs (DESIGN.md section 4).
    The env functions are picklable partials that import this package in the worker, so
    the ``robolearn/...`` ids exist there too.
    """
    import functools

    import gymnasium as gym

    if context == "fork":
        raise ValueError("context='fork' hangs once the parent has rendered; use 'spawn' or "
                         "'forkserver'")
    fns = [functools.partial(make_env, task, **kwargs) for _ in range(num_envs)]
    venv = gym.vector.AsyncVectorEnv(fns, context=context)
    if seed is not None:
        venv.reset(seed=[seed + i for i in range(num_envs)])
    return venv
