"""Config of Diffusion Policy (Chi et al. 2023): a conditional 1-D U-Net denoising action chunks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from robolearn.policies.config import PolicyConfig


@dataclass
class DiffusionConfig(PolicyConfig):
    """Diffusion Policy: DDPM training, DDIM sampling, U-Net conditioned on observations (FiLM)."""

    name: ClassVar[str] = "diffusion"

    down_dims: list[int] = field(default_factory=lambda: [128, 256, 512])
    """Channels of the U-Net levels (the horizon must be divisible by 2**(levels-1))."""
    kernel_size: int = 5
    """Temporal kernel size of the U-Net convolutions."""
    n_groups: int = 8
    """GroupNorm groups in the U-Net blocks."""
    time_embed_dim: int = 128
    """Size of the sinusoidal diffusion-step embedding."""
    image_dim: int = 128
    """Feature size of each camera after the image encoder."""
    image_channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    """Channels of the strided conv layers of the image encoder."""
    lang_dim: int = 32
    """Instruction embedding size (UTF-8 bytes embedded and mean-pooled; 0 = not language-conditioned). Multi-task stores and tasks whose instruction names the object need it."""
    lang_encoder: str = "bag"
    """How the instruction's bytes become the lang_dim vector: bag (embedded and mean-pooled)
    or conv (a width-5 convolution over the embedded bytes, max-pooled: word-like features
    such as a colour stay as strong in a long instruction as in a short one)."""
    max_text_tokens: int = 128
    """Instruction bytes read (with BOS; longer ones are cut): enough for every tabletop task instruction whole (the longest are ~105 characters)."""
    num_train_timesteps: int = 100
    """Diffusion steps of the DDPM noise schedule used for training."""
    num_inference_steps: int = 10
    """DDIM steps at inference."""
    beta_schedule: str = "squaredcos_cap_v2"
    """diffusers beta schedule name."""
    prediction_type: str = "epsilon"
    """What the U-Net predicts: epsilon or sample."""
    clip_sample: bool = True
    """Clip denoised samples to [-1, 1] (actions are min-max normalised)."""

    @classmethod
    def tiny(cls) -> "DiffusionConfig":
        return cls(n_obs=2, horizon=4, n_action_steps=2, image_size=16, down_dims=[16, 32],
                   kernel_size=3, n_groups=4, time_embed_dim=16, image_dim=16,
                   image_channels=[8, 16], num_train_timesteps=20, num_inference_steps=4,
                   lang_dim=8)

    def validate(self) -> None:
        super().validate()
        if self.horizon % 2 ** (len(self.down_dims) - 1):
            raise ValueError(f"horizon {self.horizon} must be divisible by 2**(len(down_dims)-1) = "
                             f"{2 ** (len(self.down_dims) - 1)}; change horizon or down_dims")
        if not 1 <= self.num_inference_steps <= self.num_train_timesteps:
            raise ValueError(f"num_inference_steps must be in [1, num_train_timesteps="
                             f"{self.num_train_timesteps}], got {self.num_inference_steps}")
