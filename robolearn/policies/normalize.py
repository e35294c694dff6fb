"""Per-key normalisation as a torch module whose statistics travel inside the checkpoint.

Stats come from the store (``robolearn.data.stats``) as ``{key: {"mean": [...], "std":
[...], "min": [...], "max": [...], ...}}`` with one value per feature dim (per channel
for cameras, in [0, 1] units).  They are registered as buffers, so they are saved in
``model.safetensors`` with the weights; the policy also writes them as ``stats.json``.

Modes (per key):

* ``mean_std``: ``(x - mean) / std``
* ``min_max``: map ``[min, max]`` to ``[-1, 1]`` (Diffusion Policy's choice for actions)

* ``identity``: leave as is

A feature that is (nearly) constant in the data (std or range below ``SCALE_FLOOR``) keeps
scale 1: it is only shifted.  A key can also get a *scale floor* (``floors``): a feature
that varied, but only a little (the EE orientation of a top-down scripted expert: std
~1e-3), is divided by the floor instead of its tiny std, so that the small drift of a
closed-loop rollout stays a small input instead of a 10-100 sigma one.

Images are first converted from uint8 to float in [0, 1]; their stats broadcast over
``(..., 3, H, W)``.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from robolearn import keys as K

MODES = ("mean_std", "min_max", "identity")
EPS = 1e-8
#: a feature whose std (mean_std) or range (min_max) in the data is below this is treated
#: as constant: scale 1, offset only (as Diffusion Policy's normaliser does).  Dividing by
#: a near-zero std would blow tiny deployment differences (a gripper reading 1e-5 where
#: every demo had exactly 0) up into huge inputs and wild actions.
SCALE_FLOOR = 1e-4


def _buffer_name(key: str) -> str:
    return key.replace(".", "__")


class Normalizer(nn.Module):
    """Normalise / unnormalise a dict of tensors key by key.

    Args:
        modes: ``{key: mode}`` for every key the policy reads or predicts.
        dims: ``{key: feature dim}`` (3 for cameras) used when ``stats`` lacks a key.
        stats: per-key statistics; missing keys get neutral values (mean 0, std 1,
            min -1, max 1) that a checkpoint load overwrites.
        floors: ``{key: smallest scale}`` (std or range) for features that varied in the
            data (above ``SCALE_FLOOR``); keys not named keep their data scale.
    """

    def __init__(self, modes: Mapping[str, str], dims: Mapping[str, int],
                 stats: Mapping[str, Mapping[str, Any]] | None = None,
                 floors: Mapping[str, float] | None = None):
        super().__init__()
        stats = stats or {}
        self.modes = dict(modes)
        self.floors = {k: float(v) for k, v in (floors or {}).items() if v and v > 0}
        for key, mode in self.modes.items():
            if mode not in MODES:
                raise ValueError(f"normalisation mode {mode!r} for {key!r} is not one of {MODES}")
            d = int(dims[key])
            s = stats.get(key, {})
            neutral = {"mean": 0.0, "std": 1.0, "min": -1.0, "max": 1.0}
            for stat, default in neutral.items():
                v = torch.as_tensor(s.get(stat, [default] * d), dtype=torch.float32).reshape(-1)
                if v.numel() != d:
                    raise ValueError(f"stats[{key!r}][{stat!r}] has {v.numel()} values, the policy "
                                     f"expects {d}; recompute the stats or fix the config dims")
                self.register_buffer(f"{_buffer_name(key)}__{stat}", v)

    def _stat(self, key: str, stat: str, x: torch.Tensor) -> torch.Tensor:
        v = getattr(self, f"{_buffer_name(key)}__{stat}")
        if K.is_image_key(key):  # per channel, x is (..., 3, H, W)
            return v.view(-1, 1, 1).to(x.dtype)
        return v.to(x.dtype)

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        if K.is_image_key(key) and x.dtype == torch.uint8:
            x = x.float() / 255.0
        mode = self.modes.get(key, "identity")
        if mode == "mean_std":
            return (x - self._stat(key, "mean", x)) / self._scale(key, x)
        if mode == "min_max":
            lo = self._stat(key, "min", x)
            return 2.0 * (x - lo) / self._scale(key, x) - 1.0
        return x

    def _scale(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """std (mean_std) or max - min (min_max), raised to the key's floor; 1 where the
        data was constant."""
        if self.modes.get(key) == "mean_std":
            s = self._stat(key, "std", x)
        else:
            s = self._stat(key, "max", x) - self._stat(key, "min", x)
        floored = s.clamp_min(self.floors[key]) if key in self.floors else s
        return torch.where(s > SCALE_FLOOR, floored, torch.ones_like(s))

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        mode = self.modes.get(key, "identity")
        if mode == "mean_std":
            return x * self._scale(key, x) + self._stat(key, "mean", x)
        if mode == "min_max":
            return (x + 1.0) / 2.0 * self._scale(key, x) + self._stat(key, "min", x)
        return x

    def copy_stats_from(self, other: "Normalizer", keys) -> None:
        """Take ``other``'s statistics for ``keys`` (same modes and sizes required), e.g. the
        input statistics a pretrained encoder was trained with."""
        for key in keys:
            if other.modes.get(key) != self.modes.get(key):
                raise ValueError(f"{key} is normalised with {other.modes.get(key)} there and "
                                 f"{self.modes.get(key)} here; use the same policy.*_norm")
            for stat in ("mean", "std", "min", "max"):
                name = f"{_buffer_name(key)}__{stat}"
                mine, theirs = getattr(self, name), getattr(other, name)
                if mine.shape != theirs.shape:
                    raise ValueError(f"{key} has {theirs.numel()} values there, {mine.numel()} "
                                     f"here")
                mine.copy_(theirs)

    def stats_dict(self) -> dict[str, dict[str, list[float]]]:
        """The statistics as plain lists (what ``stats.json`` holds)."""
        return {key: {stat: getattr(self, f"{_buffer_name(key)}__{stat}").tolist()
                      for stat in ("mean", "std", "min", "max")} for key in self.modes}
