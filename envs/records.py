"""Store records of expert episodes: one single-instruction benchmark episode (MetaWorld,
PushT), and DART's perturbation of the executed actions (every backend)."""

from __future__ import annotations

import numpy as np

from robolearn import keys as K


def single_task_steps(rec: dict[str, list], instruction: str, skill: str,
                      cameras: list[str]) -> dict:
    """Per-step store records from ``rec`` (lists ``state``, ``action``, ``reward`` and
    ``images``: one ``{camera: frame}`` per step): done on the last step, the same
    instruction and skill on every step, one image key per camera."""
    n = len(rec["action"])
    steps = {K.OBS_STATE: np.stack(rec["state"]), K.ACTION: np.stack(rec["action"]),
             K.REWARD: np.asarray(rec["reward"], np.float32),
             K.DONE: np.arange(n) == n - 1, K.LANGUAGE: [instruction] * n,
             K.SKILL: [skill] * n}
    for cam in cameras:
        steps[K.image_key(cam)] = np.stack([im[cam] for im in rec["images"]])
    return steps


def dart_noise(seed: int, std, low, high):
    """DART (Laskey et al. 2017) for one episode: ``executed = perturb(action)`` adds Gaussian
    noise of per-dimension ``std`` clipped to ``[low, high]``; the caller steps the env with
    it and records the clean action.  Its own random stream (``[seed, 6151]``) leaves the
    scene and the sabotage/noise draws unchanged; all-zero ``std`` returns the action as is."""
    std = np.asarray(std, float)
    if not np.any(std > 0):
        return lambda a: a
    rng = np.random.default_rng([seed, 6151])
    return lambda a: np.clip(a + rng.normal(0, 1, np.shape(a)) * std, low, high).astype(np.float32)
