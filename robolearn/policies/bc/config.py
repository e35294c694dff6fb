"""Config of the behaviour-cloning baseline (MLP or transformer -> action chunk)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from robolearn.policies.config import PolicyConfig


@dataclass
class BCConfig(PolicyConfig):
    """Behaviour cloning with action chunking: one pass maps the observation window to H actions."""

    name: ClassVar[str] = "bc"

    hidden_dim: int = 512
    """Width of the MLP hidden layers."""
    n_layers: int = 3
    """Hidden layers of the MLP."""
    dropout: float = 0.0
    """Dropout between MLP layers."""
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
    loss: str = "l1"
    """Regression loss on normalised actions: l1 or mse."""
    backbone: str = "mlp"
    """mlp (pooled features -> MLP) or transformer (action queries attend to obs tokens, ACT-style)."""
    d_model: int = 256
    """Width of the transformer backbone."""
    n_heads: int = 4
    """Attention heads of the transformer backbone."""
    n_decoder_layers: int = 4
    """Decoder layers of the transformer backbone."""

    @classmethod
    def tiny(cls) -> "BCConfig":
        return cls(n_obs=2, horizon=4, n_action_steps=2, image_size=16, hidden_dim=32,
                   n_layers=2, image_dim=16, image_channels=[8, 16], lang_dim=8)

    def validate(self) -> None:
        super().validate()
        if self.backbone not in ("mlp", "transformer"):
            raise ValueError(f"BCConfig.backbone must be 'mlp' or 'transformer', "
                             f"got {self.backbone!r}")
        if self.loss not in ("l1", "mse"):
            raise ValueError(f"BCConfig.loss must be 'l1' or 'mse', got {self.loss!r}")
