"""Config of encoder pretraining objectives (inverse dynamics and its baselines)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from robolearn.policies.config import PolicyConfig

OBJECTIVES = ("inverse", "forward", "bc")


@dataclass
class PretrainConfig(PolicyConfig):
    """Pretrain the observation encoder the policies use (Brandfonbrener et al. 2023).

    * ``inverse``: predict the actions a_t..a_{t+H-1} from (o_t, o_{t+k}) - inverse dynamics;
    * ``forward``: predict o_{t+k} (its state and an 8x8 thumbnail of every camera) from o_t
      and the actions - the forward-dynamics baseline;
    * ``bc``: predict the actions from o_t alone - the behaviour-cloning baseline.

    The encoder (``obs_encoder.image_encoder``) has the same architecture as ``bc``'s and
    ``diffusion``'s defaults, so ``policy.encoder_init=<this run>`` loads it into them.
    """

    name: ClassVar[str] = "pretrain"

    objective: str = "inverse"
    """inverse (the method), forward or bc (baselines under the same protocol)."""
    n_obs: int = 1
    """Observation steps read at t (and at t + k)."""
    horizon: int = 4
    """Actions predicted (a_t .. a_{t+H-1}); also the gap k to the future observation."""
    n_action_steps: int = 4
    """Actions executed per chunk when used as a goal-conditioned policy."""
    hidden_dim: int = 512
    """Width of the head MLP."""
    n_layers: int = 2
    """Hidden layers of the head MLP (0 = a linear head)."""
    image_dim: int = 128
    """Feature size of each camera (bc's default, so the encoder transfers)."""
    image_channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    """Conv channels of the image encoder (bc's default)."""
    thumb: int = 8
    """forward objective: side of the predicted next-frame thumbnails."""

    @property
    def future_offset(self) -> int:
        return self.horizon

    @classmethod
    def tiny(cls) -> "PretrainConfig":
        return cls(n_obs=1, horizon=2, n_action_steps=2, image_size=16, hidden_dim=32,
                   n_layers=1, image_dim=16, image_channels=[8, 16], thumb=4)

    def validate(self) -> None:
        super().validate()
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
