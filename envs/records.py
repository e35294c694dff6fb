"""Store records of one single-instruction benchmark episode (MetaWorld, PushT)."""

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
