"""Observation windows for a policy, built from the steps a robot (or sim worker) has seen."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from robolearn import keys as K


def window_batch(histories: Sequence[Sequence[Mapping[str, np.ndarray]]], n_obs: int,
                 language: Sequence[str]) -> dict[str, Any]:
    """Stack per-episode histories of step dicts (``observation.state``, images (3, H, W))
    into a policy batch of ``n_obs``-step windows.

    A history shorter than ``n_obs`` (an episode's first steps) repeats its first step and
    flags the repeats in ``observation.state_is_pad``, exactly as the training sampler pads.
    """
    rows, pad = [], np.zeros((len(histories), n_obs), bool)
    for r, hist in enumerate(histories):
        hist = list(hist)[-n_obs:]
        n_pad = n_obs - len(hist)
        pad[r, :n_pad] = True
        rows.append([hist[0]] * n_pad + hist)
    batch: dict[str, Any] = {k: torch.from_numpy(np.stack([np.stack([s[k] for s in w])
                                                           for w in rows]))
                             for k in rows[0][0]}
    batch[K.pad_key(K.OBS_STATE)] = torch.from_numpy(pad)
    batch[K.LANGUAGE] = list(language)
    return batch
