"""Implicit Q-Learning over action chunks, language/skill-conditioned, images + state.

Losses on one batch (all from the dataset's windows; no environment interaction):

* value:  ``L_V = E[ |tau - 1(u < 0)| u^2 ]``, ``u = min_i Q'_i(s, a) - V(s)`` (expectile)
* critic: ``L_Q = E[ (Q_i(s, a) - (R + gamma^n (1 - terminal) V(s')))^2 ]`` with
  ``R = sum_k gamma^k r_{t+k}`` over the chunk's real steps and ``terminal`` = a reward
  (success) inside the chunk; ``s'`` is the observation ``n = H`` steps later (fewer
  where the data ended: ``next.steps``), valued under ``next.language`` when the batch
  has it - SPRINT's cross-trajectory chaining, where the end of one skill's segment is
  valued as the start of the next skill (:mod:`robolearn.skills.sprint`)
* actor:  ``L_pi = E[ min(exp(beta (Q'(s, a) - V(s))), w_max) * ||pi(s) - a||_1 ]``
  (advantage-weighted regression on normalised actions, padded steps masked; the squared
  error with ``actor_loss=mse``)

``Q'`` is a Polyak-averaged copy of the critics, updated by :meth:`after_optimizer_step`
(the trainer calls it after every step).  One image encoder is shared by all heads.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from robolearn import keys as K
from robolearn.policies.base import Policy
from robolearn.policies.encoders import (condition_features, conv_observation_encoder,
                                         instruction_encoder)
from robolearn.policies.iql.config import IQLConfig


def expectile_loss(diff: torch.Tensor, tau: float) -> torch.Tensor:
    """Asymmetric squared loss: minimised over v by the tau-expectile of x when diff = x - v."""
    weight = torch.where(diff < 0, 1.0 - tau, tau)
    return weight * diff.pow(2)


def chunk_return(rewards: torch.Tensor, is_pad: torch.Tensor | None, gamma: float
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, H) per-step rewards -> discounted sum over the real steps up to the first reward,
    and whether a reward (the sparse success signal) happened inside the chunk (a terminal
    transition).  Rewards after the first one in a chunk are not counted: demos go on a few
    steps after the success (the expert's release, with the env's reward still 1), and a task
    is done once."""
    h = rewards.shape[1]
    disc = gamma ** torch.arange(h, device=rewards.device, dtype=rewards.dtype)
    r = rewards if is_pad is None else rewards * (~is_pad).to(rewards.dtype)
    hit = r > 0
    r = r * ((hit.cumsum(1) - hit.long()) == 0).to(r.dtype)  # nothing after the first
    return (r * disc).sum(1), hit.any(1)


def mlp(d_in: int, d_out: int, hidden: int, layers: int) -> nn.Sequential:
    dims = [d_in] + [hidden] * layers
    mods: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        mods += [nn.Linear(a, b), nn.LayerNorm(b), nn.Mish()]
    return nn.Sequential(*mods, nn.Linear(dims[-1], d_out))


class IQLPolicy(Policy):
    config_class = IQLConfig
    name = "iql"

    def __init__(self, config: IQLConfig, stats: Mapping[str, Any] | None = None,
                 image_encoder: nn.Module | None = None):
        super().__init__(config, stats)
        c = config
        self.obs_encoder = conv_observation_encoder(c, self.normalizer, image_encoder)
        self.instruction = instruction_encoder(c)
        feat = self.obs_encoder.feature_dim * c.n_obs + c.lang_dim
        act = c.horizon * c.action_dim
        self.value = mlp(feat, 1, c.hidden_dim, c.n_layers)
        self.q1 = mlp(feat + act, 1, c.hidden_dim, c.n_layers)
        self.q2 = mlp(feat + act, 1, c.hidden_dim, c.n_layers)
        self.actor = mlp(feat, act, c.hidden_dim, c.n_layers)
        if c.actor_encoder == "own":  # the actor's features, shaped by its loss alone
            self.actor_obs_encoder = conv_observation_encoder(
                c, self.normalizer, copy.deepcopy(image_encoder))
            self.actor_instruction = instruction_encoder(c)
        self.q1_target, self.q2_target = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        for p in list(self.q1_target.parameters()) + list(self.q2_target.parameters()):
            p.requires_grad_(False)

    # ---- features ---------------------------------------------------------------------
    def features(self, obs: Mapping[str, Any], prefix: str = "") -> torch.Tensor:
        """(B, F): the observation window (``prefix`` = ``next.`` for s') + instruction."""
        return condition_features(self.obs_encoder, self.instruction, obs, prefix)

    def actor_features(self, obs: Mapping[str, Any], shared: torch.Tensor | None = None
                       ) -> torch.Tensor:
        """The actor's input: the shared features (``shared`` when already computed), or
        its own encoder's (``actor_encoder=own``)."""
        if self.config.actor_encoder == "own":
            return condition_features(self.actor_obs_encoder, self.actor_instruction, obs)
        return self.features(obs) if shared is None else shared

    def q_values(self, feats: torch.Tensor, actions_norm: torch.Tensor, target: bool = False):
        x = torch.cat([feats, actions_norm.flatten(1)], -1)
        q1, q2 = (self.q1_target, self.q2_target) if target else (self.q1, self.q2)
        return q1(x).squeeze(-1), q2(x).squeeze(-1)

    # ---- contract -----------------------------------------------------------------------
    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        c = self.config
        if K.next_key(K.OBS_STATE) not in batch:
            raise KeyError("iql needs the next observation window: train with "
                           "data.future_offset = policy.horizon (robolearn-train sets it)")
        a = self.normalizer.normalize(K.ACTION, batch[K.ACTION].float())
        pad = batch.get(K.pad_key(K.ACTION))
        if pad is not None:  # steps past the episode end are not part of the macro-action
            a = a * (~pad).unsqueeze(-1).to(a.dtype)
        s = self.features(batch)
        with torch.no_grad():
            s_next = self.features(batch, K.NEXT_PREFIX)  # same instruction, window at t+H
            tq = torch.minimum(*self.q_values(s.detach(), a, target=True))
            r, terminal = chunk_return(batch[K.REWARD].float(), pad, c.gamma)
            v_next = self.value(s_next).squeeze(-1)
            steps = batch.get(K.NEXT_STEPS)  # fewer than H where the data ended first
            # at an episode's last step s' is s itself: discount at least once, so a
            # truncated (unsuccessful) end does not become a value-preserving self-loop
            disc = (c.gamma ** c.horizon if steps is None
                    else c.gamma ** steps.to(v_next.device, v_next.dtype).clamp_min(1.0))
            target = r + disc * (~terminal).float() * v_next
        v = self.value(s).squeeze(-1)
        v_loss = expectile_loss(tq - v, c.expectile).mean()
        q1, q2 = self.q_values(s, a)
        q_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        adv = (tq - v).detach()
        w = torch.exp(c.beta * adv).clamp(max=c.max_weight)
        pred = self.actor(self.actor_features(batch, s)).view(-1, c.horizon, c.action_dim)
        err = (pred - a).abs() if c.actor_loss == "l1" else (pred - a).pow(2)
        if pad is not None:
            keep = (~pad).unsqueeze(-1).to(err.dtype).expand_as(err)
            per = (err * keep).sum((1, 2)) / keep.sum((1, 2)).clamp_min(1.0)
        else:
            per = err.mean((1, 2))
        actor_loss = (w * per).mean()
        return {"loss": v_loss + q_loss + actor_loss, "v_loss": v_loss.detach(),
                "q_loss": q_loss.detach(), "actor_loss": actor_loss.detach(),
                "v_mean": v.mean().detach(), "adv_mean": adv.mean(), "weight_mean": w.mean()}

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """Polyak-average the target critics towards the online ones."""
        tau = self.config.target_tau
        for tgt, src in ((self.q1_target, self.q1), (self.q2_target, self.q2)):
            for pt, ps in zip(tgt.parameters(), src.parameters()):
                pt.lerp_(ps, tau)

    @torch.no_grad()
    def predict_action_chunk(self, obs: Mapping[str, Any]) -> torch.Tensor:
        c = self.config
        pred = self.actor(self.actor_features(obs)).view(-1, c.horizon, c.action_dim)
        return self.normalizer.unnormalize(K.ACTION, pred)

    @torch.no_grad()
    def value_of(self, obs: Mapping[str, Any]) -> torch.Tensor:
        """V(s) for an observation window (B,) - e.g. to score a skill's start states."""
        return self.value(self.features(obs)).squeeze(-1)
