"""Config of Implicit Q-Learning (Kostrikov et al. 2022) over action chunks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from robolearn.policies.config import PolicyConfig


@dataclass
class IQLConfig(PolicyConfig):
    """Offline RL: expectile value, twin Q over action chunks, advantage-weighted actor.

    An action chunk of ``horizon`` steps is one macro-action: its reward is the discounted
    sum of the store's per-step rewards inside the chunk and its next state is the
    observation ``horizon`` steps later (the sampler's ``future_offset``).
    """

    name: ClassVar[str] = "iql"

    n_obs: int = 1
    """Observation steps read (the current one)."""
    horizon: int = 4
    """Steps of the action chunk (one macro-action) and of the gap to the next state."""
    n_action_steps: int = 4
    """Actions executed per predicted chunk."""
    action_norm: str = "mean_std"
    """Normalisation of actions (the actor regresses normalised chunks)."""
    gamma: float = 0.99
    """Per-step discount (a chunk of H steps is discounted by gamma**H)."""
    expectile: float = 0.7
    """tau of the expectile value loss (0.5 = SARSA mean, -> 1 = max over the data's actions)."""
    beta: float = 3.0
    """Inverse temperature of the advantage weights exp(beta * (Q - V))."""
    max_weight: float = 100.0
    """Advantage weights are clipped to this."""
    actor_loss: str = "l1"
    """Regression loss of the weighted actor on normalised actions: l1 (a fixed-scale Laplace
    policy; bc's default) or mse (a fixed-variance Gaussian, as the IQL paper). On the
    tabletop's pretraining store the mse actor solved Pick 3/20 where l1 solved 20/20 (bc
    shows the same split: 3/20 with mse, 18/20 with l1)."""
    actor_encoder: str = "shared"
    """shared: the actor reads the features the value/critics train (one encoder); own: the
    actor has its own observation + instruction encoder, trained by the actor loss alone."""
    target_tau: float = 0.005
    """Polyak rate of the target Q networks (updated after every optimiser step)."""
    hidden_dim: int = 256
    """Width of the V, Q and actor MLPs."""
    n_layers: int = 2
    """Hidden layers of each MLP."""
    image_dim: int = 64
    """Feature size of each camera after the image encoder."""
    image_channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    """Channels of the strided conv layers of the image encoder."""
    lang_dim: int = 32
    """Size of the instruction embedding (bytes, embedded and mean-pooled; 0 = unconditioned)."""
    lang_encoder: str = "bag"
    """How the instruction's bytes become the lang_dim vector: bag (embedded and mean-pooled)
    or conv (a width-5 convolution over the embedded bytes, max-pooled: word-like features
    such as a colour stay as strong in a long instruction as in a short one)."""
    max_text_tokens: int = 128
    """Instruction bytes read (with BOS; longer ones are cut): enough for every tabletop task instruction whole (the longest are ~105 characters)."""

    @property
    def future_offset(self) -> int:
        """The sampler must provide the observation this many steps ahead (= horizon)."""
        return self.horizon

    @classmethod
    def tiny(cls) -> "IQLConfig":
        return cls(n_obs=1, horizon=4, n_action_steps=2, image_size=16, hidden_dim=32,
                   n_layers=2, image_dim=16, image_channels=[8, 16], lang_dim=8,
                   max_text_tokens=16)

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.expectile < 1.0:
            raise ValueError(f"expectile must be in (0, 1), got {self.expectile}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if self.actor_loss not in ("mse", "l1"):
            raise ValueError(f"IQLConfig.actor_loss must be 'mse' or 'l1', got {self.actor_loss!r}")
        if self.actor_encoder not in ("shared", "own"):
            raise ValueError(f"IQLConfig.actor_encoder must be 'shared' or 'own', "
                             f"got {self.actor_encoder!r}")
        if self.actor_encoder == "own" and self.encoder_init:
            raise ValueError("encoder_init loads one pretrained encoder, the shared one; "
                             "use policy.actor_encoder=shared with it")
