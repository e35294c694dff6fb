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
from robolearn.policies.base import WEIGHTS_FILE, Policy, resolve_policy_dir
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


def load_pretrained_policy(policy: Policy, path: str | Path) -> int:
    """Copy all weights and normalisation statistics of the policy at ``path`` (a run,
    checkpoint step or policy folder of the same type and sizes) into ``policy``."""
    import json

    from safetensors.torch import load_file

    from robolearn.policies.base import CONFIG_FILE

    src_dir = resolve_policy_dir(path)
    kind = json.loads((src_dir / CONFIG_FILE).read_text()).get("type")
    if kind != policy.name:
        raise ValueError(f"{path} holds a {kind} policy; init_from needs a {policy.name} one")
    src = load_file(str(src_dir / WEIGHTS_FILE))
    mine = policy.state_dict()
    bad = sorted(k for k in mine if k not in src or src[k].shape != mine[k].shape)
    if bad:
        raise ValueError(f"{path} does not fit this {policy.name} (mismatched {bad[:3]}); "
                         f"use the pretraining run's policy sizes")
    policy.load_state_dict({k: src[k] for k in mine})
    return len(mine)


def load_pretrained_encoder(policy: Policy, path: str | Path, freeze: bool = False) -> int:
    """Copy a pretraining run's observation encoder into ``policy.obs_encoder``.

    Moves the image encoder (``obs_encoder.image_encoder``) and, when the configs have one
    (``state_encoder_dim > 0``), the learned state encoder, together with the observation
    normalisation statistics they were trained with (an encoder expects its inputs scaled
    as in pretraining, not by the few fine-tuning demos' statistics).

    ``path``: a run folder, checkpoint step folder or policy folder of a ``pretrain`` run
    (or of any policy with the same encoder). Returns the number of tensors loaded.
    """
    import json

    from safetensors.torch import load_file

    from robolearn.policies.base import CONFIG_FILE

    src_dir = resolve_policy_dir(path)
    src = load_file(str(src_dir / WEIGHTS_FILE))
    enc = getattr(policy, "obs_encoder", None)
    if enc is None:
        raise ValueError(f"{policy.name} has no obs_encoder to initialise (encoder_init serves "
                         f"bc, diffusion and iql)")
    loaded = 0
    for part in ENCODER_PARTS:
        prefix = f"obs_encoder.{part}."
        theirs = {k[len(prefix):]: v for k, v in src.items() if k.startswith(prefix)}
        target = getattr(enc, part, None)
        if target is None and not theirs:
            continue
        if target is None or not theirs:
            field = "state_encoder_dim" if part == "state_encoder" else "image_keys"
            raise ValueError(f"{path} {'has' if theirs else 'has no'} a {part} but "
                             f"{policy.name} {'has none' if theirs else 'has one'}; use the "
                             f"pretraining run's {field} for the policy")
        mine = target.state_dict()
        bad = [k for k in mine if k not in theirs or theirs[k].shape != mine[k].shape]
        if bad:
            raise ValueError(f"the {part} in {path} does not fit {policy.name}'s (mismatched "
                             f"{bad[:3]}); use the same image_size, image_channels, image_dim "
                             f"and state_encoder_dim as the pretraining run")
        target.load_state_dict({k: theirs[k] for k in mine})
        loaded += len(mine)
        if freeze:
            for p in target.parameters():
                p.requires_grad_(False)
    if not loaded:
        raise ValueError(f"{path} holds no obs_encoder.image_encoder/state_encoder weights "
                         f"(not an encoder run)")
    cfg = json.loads((src_dir / CONFIG_FILE).read_text()).get("config", {})
    norm = policy.normalizer
    for key in [K.OBS_STATE] + list(enc.image_keys):
        mode_field = "state_norm" if key == K.OBS_STATE else "image_norm"
        if cfg.get(mode_field, norm.modes.get(key)) != norm.modes.get(key):
            raise ValueError(f"{path} normalised {key} with {mode_field}={cfg[mode_field]}, "
                             f"{policy.name} with {norm.modes.get(key)}; use the same "
                             f"policy.{mode_field}")
        for stat in ("mean", "std", "min", "max"):
            name = f"normalizer.{key.replace('.', '__')}__{stat}"
            buf = getattr(norm, name.split(".", 1)[1], None)
            if name in src and buf is not None and src[name].shape == buf.shape:
                buf.copy_(src[name])
    return loaded
