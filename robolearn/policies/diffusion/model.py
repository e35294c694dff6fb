"""Diffusion Policy (Chi et al. 2023): DDPM training and DDIM sampling of action chunks.

The noise schedulers come from ``diffusers`` and are injected objects; the denoiser is
the FiLM-conditioned 1-D U-Net of :mod:`.unet`, conditioned on the flattened features of
the observation window.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from robolearn import keys as K
from robolearn.policies.base import Policy
from robolearn.policies.bc.model import masked_mean
from robolearn.policies.diffusion.config import DiffusionConfig
from robolearn.policies.diffusion.unet import ConditionalUnet1D
from robolearn.policies.encoders import condition_features, conv_observation_encoder, instruction_encoder


def make_schedulers(c: DiffusionConfig):
    from diffusers import DDIMScheduler, DDPMScheduler

    common = dict(num_train_timesteps=c.num_train_timesteps, beta_schedule=c.beta_schedule,
                  prediction_type=c.prediction_type, clip_sample=c.clip_sample)
    return DDPMScheduler(**common), DDIMScheduler(**common)


class DiffusionPolicy(Policy):
    config_class = DiffusionConfig
    name = "diffusion"
    inference_keys = ("num_inference_steps",)

    def __init__(self, config: DiffusionConfig, stats: Mapping[str, Any] | None = None,
                 image_encoder: nn.Module | None = None, schedulers=None):
        super().__init__(config, stats)
        c = config
        self.obs_encoder = conv_observation_encoder(c, self.normalizer, image_encoder)
        self.instruction = instruction_encoder(c)  # None unless lang_dim > 0
        self.unet = ConditionalUnet1D(c.action_dim,
                                      self.obs_encoder.feature_dim * c.n_obs + c.lang_dim,
                                      c.down_dims, c.kernel_size, c.n_groups, c.time_embed_dim)
        self.train_scheduler, self.infer_scheduler = schedulers or make_schedulers(c)

    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        cond = condition_features(self.obs_encoder, self.instruction, batch)
        x0 = self.normalizer.normalize(K.ACTION, batch[K.ACTION].float())  # (B, H, A)
        # 1. sample a diffusion step per sample and noise the clean chunk (DDPM forward process)
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.config.num_train_timesteps, (x0.shape[0],), device=x0.device)
        xt = self.train_scheduler.add_noise(x0, noise, t)
        # 2. predict the noise (or the clean chunk) and regress it on non-padded steps
        pred = self.unet(xt, t, cond)
        target = noise if self.config.prediction_type == "epsilon" else x0
        loss = masked_mean(F.mse_loss(pred, target, reduction="none"),
                           batch.get(K.pad_key(K.ACTION)))
        return {"loss": loss}

    @torch.no_grad()
    def predict_action_chunk(self, obs: Mapping[str, Any],
                             noise: torch.Tensor | None = None) -> torch.Tensor:
        """DDIM-sample a chunk: (B, horizon, action_dim) raw actions."""
        obs = self.on_device(obs)
        cond = condition_features(self.obs_encoder, self.instruction, obs)
        c = self.config
        x = noise if noise is not None else torch.randn(cond.shape[0], c.horizon, c.action_dim,
                                                        device=cond.device)
        sched = self.infer_scheduler
        sched.set_timesteps(c.num_inference_steps, device=cond.device)
        # DDIM: deterministic (eta = 0) denoising over num_inference_steps steps
        for t in sched.timesteps:
            eps = self.unet(x, t.expand(x.shape[0]).to(cond.device), cond)
            x = sched.step(eps, t, x).prev_sample
        return self.normalizer.unnormalize(K.ACTION, x)
