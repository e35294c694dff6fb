"""Behaviour cloning with action chunking: observation window -> H normalised actions at once."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from robolearn import keys as K
from robolearn.policies.base import Policy
from robolearn.policies.bc.config import BCConfig
from robolearn.policies.encoders import (ConvImageEncoder, condition_features,
                                         conv_observation_encoder, instruction_encoder,
                                         prepare_images)


def masked_mean(per_elem: torch.Tensor, is_pad: torch.Tensor | None) -> torch.Tensor:
    """Mean of (B, H, A) over the steps that are not padding (is_pad: (B, H))."""
    if is_pad is None:
        return per_elem.mean()
    keep = (~is_pad).unsqueeze(-1).to(per_elem.dtype).expand_as(per_elem)
    return (per_elem * keep).sum() / keep.sum().clamp_min(1.0)


class BCPolicy(Policy):
    """Two backbones over the same contract:

    * ``mlp``: pooled per-camera features + state of every observation step -> MLP -> H*A.
    * ``transformer``: every image token and one state token per step (with learned
      position embeddings) form a memory; H learned action queries cross-attend to it
      (ACT's decoder, without its CVAE) and each yields one action.
    """

    config_class = BCConfig
    name = "bc"

    def __init__(self, config: BCConfig, stats: Mapping[str, Any] | None = None,
                 image_encoder: nn.Module | None = None):
        super().__init__(config, stats)
        c = config
        if image_encoder is None and c.image_keys:
            image_encoder = ConvImageEncoder(c.image_size, c.image_channels, c.image_dim)
        self.instruction = instruction_encoder(c)  # None unless lang_dim > 0
        if c.backbone == "mlp":
            self.obs_encoder = conv_observation_encoder(c, self.normalizer, image_encoder)
            dims = [self.obs_encoder.feature_dim * c.n_obs + c.lang_dim] + \
                [c.hidden_dim] * c.n_layers
            layers: list[nn.Module] = []
            for d_in, d_out in zip(dims[:-1], dims[1:]):
                layers += [nn.Linear(d_in, d_out), nn.GELU(), nn.Dropout(c.dropout)]
            layers.append(nn.Linear(dims[-1], c.horizon * c.action_dim))
            self.head = nn.Sequential(*layers)
        else:
            self._build_transformer(c, image_encoder)

    def _build_transformer(self, c: BCConfig, image_encoder: nn.Module | None) -> None:
        d = c.d_model
        self.image_encoder = image_encoder
        # the memory takes the encoder's tokens, so its pooling head gets no gradient
        self.ddp_find_unused_parameters = image_encoder is not None
        n_img = image_encoder.n_tokens * len(c.image_keys) if c.image_keys else 0
        if c.image_keys:
            self.token_proj = nn.Linear(image_encoder.token_dim, d)
        self.state_proj = nn.Linear(c.state_dim, d)
        n_lang = 1 if c.lang_dim else 0  # the instruction is one more memory token
        if n_lang:
            self.lang_proj = nn.Linear(c.lang_dim, d)
        self.memory_pos = nn.Parameter(0.02 * torch.randn(1, c.n_obs * (n_img + 1) + n_lang, d))
        self.queries = nn.Parameter(0.02 * torch.randn(1, c.horizon, d))
        layer = nn.TransformerDecoderLayer(d, c.n_heads, 4 * d, c.dropout, batch_first=True,
                                           norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, c.n_decoder_layers)
        self.action_head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, c.action_dim))

    def _memory(self, obs: Mapping[str, Any]) -> torch.Tensor:
        """Observation window -> tokens (B, n_obs * (cams * n_tokens + 1), d_model)."""
        c = self.config
        state = self.normalizer.normalize(K.OBS_STATE, obs[K.OBS_STATE].float())  # (B, T, D)
        b, t = state.shape[:2]
        parts = []
        for key in c.image_keys:
            img = prepare_images(self.normalizer, key, obs[key], c.image_size,
                                 c.image_shift_px if self.training else 0).flatten(0, 1)
            parts.append(self.token_proj(self.image_encoder(img)).view(b, t, -1, c.d_model))
        parts.append(self.state_proj(state)[:, :, None])
        memory = torch.cat(parts, dim=2).flatten(1, 2)
        if self.instruction is not None:
            lang = self.instruction(obs.get(K.LANGUAGE), b, memory.device)
            memory = torch.cat([memory, self.lang_proj(lang)[:, None]], dim=1)
        return memory + self.memory_pos

    def _predict_normalised(self, obs: Mapping[str, Any]) -> torch.Tensor:
        c = self.config
        if c.backbone == "mlp":
            feats = condition_features(self.obs_encoder, self.instruction, obs)
            return self.head(feats).view(-1, c.horizon, c.action_dim)
        memory = self._memory(obs)
        queries = self.queries.expand(memory.shape[0], -1, -1)
        return self.action_head(self.decoder(queries, memory))  # (B, H, A)

    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        pred = self._predict_normalised(batch)
        target = self.normalizer.normalize(K.ACTION, batch[K.ACTION].float())
        err = (pred - target).abs() if self.config.loss == "l1" else (pred - target) ** 2
        loss = masked_mean(err, batch.get(K.pad_key(K.ACTION)))
        return {"loss": loss, "mse": F.mse_loss(pred.detach(), target)}

    @torch.no_grad()
    def predict_action_chunk(self, obs: Mapping[str, Any]) -> torch.Tensor:
        """(B, horizon, action_dim) raw actions for an observation window."""
        obs = self.on_device(obs)
        return self.normalizer.unnormalize(K.ACTION, self._predict_normalised(obs))
