"""Exponential moving average of a model's parameters (kept in float32)."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


class EMA:
    """``shadow = decay * shadow + (1 - decay) * param`` after every optimiser step.

    The decay warms up as ``min(max_decay, (1 + step) / (10 + step))`` so early,
    random weights are forgotten quickly (the schedule of Diffusion Policy's EMA).
    """

    def __init__(self, model: nn.Module, max_decay: float = 0.999):
        self.max_decay = max_decay
        self.shadow = {n: p.detach().float().clone() for n, p in model.named_parameters()}

    def decay(self, step: int) -> float:
        return min(self.max_decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = self.decay(step)
        for n, p in model.named_parameters():
            self.shadow[n].mul_(d).add_(p.detach().float(), alpha=1 - d)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        missing = set(self.shadow) - set(sd)
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)[:3]}...; checkpoint from another model?")
        for n in self.shadow:
            self.shadow[n].copy_(sd[n])

    def model_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The model's full state dict with parameters replaced by their averages."""
        sd = model.state_dict()
        for n, v in self.shadow.items():
            sd[n] = v.to(sd[n].dtype)
        return sd

    @contextmanager
    def applied(self, model: nn.Module):
        """Temporarily load the averaged weights into ``model``."""
        backup = {n: p.detach().clone() for n, p in model.named_parameters()}
        model.load_state_dict(self.model_state_dict(model))
        try:
            yield model
        finally:
            with torch.no_grad():
                for n, p in model.named_parameters():
                    p.copy_(backup[n])
