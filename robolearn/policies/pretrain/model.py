"""Encoder pretraining by inverse dynamics (and forward-dynamics / BC baselines).

The model is a :class:`Policy` so the shared trainer, checkpoints and resume serve it
unchanged; it is not in the policy registry's list (it is not something to deploy).  Its
``obs_encoder`` (image and state encoders) is what later policies load (:func:`load_pretrained_encoder`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from robolearn import keys as K
from robolearn.policies.base import Policy, load_policy, mismatched_keys
from robolearn.policies.encoders import conv_observation_encoder, prepare_images
from robolearn.policies.pretrain.config import PretrainConfig

#: the parts of ``obs_encoder`` that encoder_init moves between runs
ENCODER_PARTS = ("image_encoder", "state_encoder")


def head(d_in: int, d_out: int, hidden: int, layers: int) -> nn.Module:
    dims = [d_in] + [hidden] * layers
    mods: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        mods += [nn.Linear(a, b), nn.Mish()]
    return nn.Sequential(*mods, nn.Linear(dims[-1], d_out))


class PretrainModel(Policy):
    config_class = PretrainConfig
    name = "pretrain"

    def __init__(self, config: PretrainConfig, stats: Mapping[str, Any] | None = None):
        super().__init__(config, stats)
        c = config
        self.obs_encoder = conv_observation_encoder(c, self.normalizer)
        f = self.obs_encoder.feature_dim * c.n_obs
        act = c.horizon * c.action_dim
        if c.objective == "inverse":
            self.head = head(2 * f, act, c.hidden_dim, c.n_layers)
        elif c.objective == "bc":
            self.head = head(f, act, c.hidden_dim, c.n_layers)
        else:  # forward: next state + a thumbnail per camera
            out = c.state_dim + len(c.image_keys) * 3 * c.thumb * c.thumb
            self.head = head(f + act, out, c.hidden_dim, c.n_layers)

    def _z(self, obs: Mapping[str, Any], prefix: str = "") -> torch.Tensor:
        return self.obs_encoder(obs, prefix).flatten(1)

    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        c = self.config
        if c.objective != "bc" and K.next_key(K.OBS_STATE) not in batch:
            raise KeyError(f"the {c.objective} objective needs the observation "
                           f"horizon={c.horizon} steps ahead: train with data.future_offset "
                           f"(robolearn-train sets it from the policy)")
        a = self.normalizer.normalize(K.ACTION, batch[K.ACTION].float())
        pad = batch.get(K.pad_key(K.ACTION))
        keep = torch.ones_like(a[..., :1]) if pad is None else (~pad).unsqueeze(-1).to(a.dtype)
        z = self._z(batch)
        if c.objective == "forward":
            pred = self.head(torch.cat([z, (a * keep).flatten(1)], -1))
            nxt = batch[K.next_key(K.OBS_STATE)][:, -1].float()
            target = [self.normalizer.normalize(K.OBS_STATE, nxt)]
            for key in c.image_keys:
                im = prepare_images(self.normalizer, key, batch[K.next_key(key)][:, -1], c.thumb)
                target.append(im.flatten(1))
            loss = F.mse_loss(pred, torch.cat(target, -1))
            return {"loss": loss}
        x = torch.cat([z, self._z(batch, K.NEXT_PREFIX)], -1) if c.objective == "inverse" else z
        pred = self.head(x).view(-1, c.horizon, c.action_dim)
        err = (pred - a).pow(2) * keep
        loss = err.sum() / (keep.sum() * c.action_dim).clamp_min(1.0)
        return {"loss": loss, "action_mse": loss.detach()}

    @torch.no_grad()
    def predict_action_chunk(self, obs: Mapping[str, Any]) -> torch.Tensor:
        """Actions from (o_t, o_{t+k}) (inverse: a goal-conditioned policy) or o_t (bc)."""
        c = self.config
        if c.objective == "forward":
            raise NotImplementedError("a forward-dynamics model predicts observations, not actions")
        z = self._z(obs)
        x = torch.cat([z, self._z(obs, K.NEXT_PREFIX)], -1) if c.objective == "inverse" else z
        return self.normalizer.unnormalize(K.ACTION, self.head(x).view(-1, c.horizon,
                                                                       c.action_dim))


def load_pretrained_encoder(policy: Policy, path: str | Path, freeze: bool = False) -> int:
    """Copy a pretraining run's observation encoders into ``policy.encoder_modules()``.

    Moves the image encoder (``obs_encoder.image_encoder``; flow_vla has none to move) and,
    when the configs have one
    (``state_encoder_dim > 0``), the learned state encoder, together with the observation
    normalisation statistics they were trained with (an encoder expects its inputs scaled
    as in pretraining, not by the few fine-tuning demos' statistics).

    ``path``: a run folder, checkpoint step folder or policy folder of a ``pretrain`` run
    (or of any policy with the same encoder). Returns the number of tensors loaded.
    """
    src = load_policy(path)
    mine, theirs = policy.encoder_modules(), src.encoder_modules()
    if not mine or not theirs:
        who = policy.name if not mine else f"the {src.name} policy in {path}"
        raise ValueError(f"{who} has no observation encoder to move (encoder_init serves bc, "
                         f"diffusion, iql, flow_vla's state encoder and pretrain runs)")
    loaded, stats_keys = 0, [K.OBS_STATE]
    for part in ENCODER_PARTS:
        target, source = mine.get(part), theirs.get(part)
        if target is None and source is None:
            continue
        if target is None or source is None:
            field = "state_encoder_dim" if part == "state_encoder" else "image_keys"
            raise ValueError(f"{path} {'has' if source is not None else 'has no'} a {part} but "
                             f"{policy.name} {'has none' if target is None else 'has one'}; "
                             f"use the pretraining run's {field} for the policy"
                             + (f" ({policy.encoder_note})" if target is None
                                and policy.encoder_note else ""))
        want, got = target.state_dict(), source.state_dict()
        bad = mismatched_keys(want, got)
        if bad:
            raise ValueError(f"the {part} in {path} does not fit {policy.name}'s (mismatched "
                             f"{bad[:3]}); use the same image_size, image_channels, image_dim "
                             f"and state_encoder_dim as the pretraining run")
        target.load_state_dict(got)
        loaded += len(want)
        if part == "image_encoder":
            stats_keys += list(policy.config.image_keys)
        if freeze:
            for p in target.parameters():
                p.requires_grad_(False)
    policy.normalizer.copy_stats_from(src.normalizer, stats_keys)
    return loaded
