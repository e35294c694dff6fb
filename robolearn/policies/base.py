"""The one policy contract every policy implements, and its checkpoint format.

A policy is an ``nn.Module`` built from a :class:`PolicyConfig` and the store's
normalisation stats.  It reads raw (unnormalised) batches with the keys of
``robolearn.keys`` (see ``robolearn.data.dataset``) and normalises them itself:

* ``forward(batch) -> {"loss": scalar, ...}`` for training,
* ``predict_action_chunk(obs) -> (B, horizon, action_dim)`` raw actions,
* ``select_action(obs) -> (B, action_dim)``: pops from a queue of the first
  ``n_action_steps`` actions of a chunk, predicting a new chunk when it runs empty,
* ``reset()`` clears the queues at the start of an episode.

Checkpoints (``save_pretrained``/``load_policy``) are a folder with ``config.json``
(policy type + config fields), ``model.safetensors`` (weights and normaliser buffers)
and ``stats.json`` - never pickles.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from pathlib import Path
from typing import Any, ClassVar, Mapping

import torch
from torch import nn

from robolearn import keys as K
from robolearn.policies.config import PolicyConfig

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATS_FILE = "stats.json"


class Policy(nn.Module):
    """Base class: the queueing, normalisation plumbing and checkpoint I/O."""

    config_class: ClassVar[type[PolicyConfig]] = PolicyConfig
    name: ClassVar[str] = ""
    #: some parameters get no gradient on some steps (DDP must look for them)
    ddp_find_unused_parameters: ClassVar[bool] = False
    #: config fields that only change how a trained policy acts (an evaluation may set
    #: them: EvalProtocol.policy_overrides); every other field shapes what was learned
    inference_keys: ClassVar[tuple[str, ...]] = ()
    #: weights an init_from source may lack, or hold when this policy does not (optional
    #: add-ons such as training-only heads): they start fresh / are left out
    optional_weights: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: PolicyConfig, stats: Mapping[str, Any] | None = None):
        super().__init__()
        config.validate()
        self.config = config
        from robolearn.policies.normalize import Normalizer

        modes = {K.OBS_STATE: config.state_norm, K.ACTION: config.action_norm}
        dims = {K.OBS_STATE: config.state_dim, K.ACTION: config.action_dim}
        for k in config.image_keys:
            modes[k], dims[k] = config.image_norm, 3
        self.normalizer = Normalizer(modes, dims, stats,
                                     floors={K.OBS_STATE: config.state_scale_floor})
        self._action_queue: deque = deque()
        self._obs_history: deque = deque(maxlen=config.n_obs)
        self._steps_seen = 0

    # ---- to implement --------------------------------------------------------------------
    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def predict_action_chunk(self, obs: Mapping[str, Any]) -> torch.Tensor:
        raise NotImplementedError

    def val_metrics(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """Numbers beside the loss that say more of a validation batch (the trainer averages
        them over its validation batches and logs each as ``val_<name>``); none by default."""
        return {}

    # ---- shared -----------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def on_device(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """Tensors and numpy arrays of ``obs`` as tensors on the policy's device."""
        dev = self.device

        def conv(v):
            if torch.is_tensor(v) or (hasattr(v, "__array__") and not isinstance(v, (list, str))):
                return torch.as_tensor(v).to(dev)
            return v  # strings, lists of strings

        return {k: conv(v) for k, v in obs.items()}

    def reset(self) -> None:
        """Start of an episode: forget queued actions and observation history."""
        self._action_queue.clear()
        self._obs_history.clear()

    def _with_history(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """Add the time axis to a single-step observation using the last n_obs steps.

        Steps before the episode start repeat the first step and are flagged in
        ``observation.state_is_pad``, exactly like the window sampler pads.
        """
        state = torch.as_tensor(obs[K.OBS_STATE])
        if state.ndim == 3:  # already (B, n_obs, D)
            return dict(obs)
        step = {k: torch.as_tensor(v) for k, v in obs.items()
                if k == K.OBS_STATE or K.is_image_key(k)}
        if not self._obs_history:
            self._obs_history.extend([step] * (self.config.n_obs - 1))
            self._steps_seen = 0
        self._obs_history.append(step)
        self._steps_seen += 1
        n_pad = max(0, self.config.n_obs - self._steps_seen)
        out = dict(obs)
        for k in step:
            out[k] = torch.stack([h[k] for h in self._obs_history], dim=1)
        pad = torch.zeros(state.shape[0], self.config.n_obs, dtype=torch.bool)
        pad[:, :n_pad] = True
        out[K.pad_key(K.OBS_STATE)] = pad
        return out

    @torch.no_grad()
    def select_action(self, obs: Mapping[str, Any]) -> torch.Tensor:
        """One action (B, action_dim) per call from a queue refilled with action chunks.

        ``obs`` holds one step (``state`` (B, D), images (B, 3, H, W)) or a window
        (``state`` (B, n_obs, D)).
        """
        obs = self.on_device(self._with_history(self.on_device(obs)))
        if not self._action_queue:
            chunk = self.predict_action_chunk(obs)  # (B, H, A)
            self._action_queue.extend(chunk[:, : self.config.n_action_steps].transpose(0, 1))
        return self._action_queue.popleft()

    #: why a part of encoder_modules() is missing, for encoder_init's error ("" = nothing to add)
    encoder_note: ClassVar[str] = ""

    def encoder_modules(self) -> dict[str, "nn.Module | None"]:
        """The observation encoders ``encoder_init`` can move between policies, by part
        (``image_encoder``, ``state_encoder``); the conv-based policies keep theirs in
        ``obs_encoder``. A policy with none returns {}."""
        enc = getattr(self, "obs_encoder", None)
        if enc is None:
            return {}
        return {"image_encoder": getattr(enc, "image_encoder", None),
                "state_encoder": getattr(enc, "state_encoder", None)}

    def save_pretrained(self, path: str | Path, state_dict: Mapping[str, torch.Tensor] | None = None):
        """Write config.json + model.safetensors + stats.json into folder ``path``."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG_FILE).write_text(json.dumps(
            {"type": self.name, "config": self.config.to_dict()}, indent=2))
        (path / STATS_FILE).write_text(json.dumps(self.normalizer.stats_dict(), indent=2))
        sd = state_dict if state_dict is not None else self.state_dict()
        save_file(_dedup_contiguous(sd), str(path / WEIGHTS_FILE))
        self.save_extra(path)

    def save_extra(self, path: Path) -> None:
        """Hook: write what rebuilding the architecture needs beyond config.json."""

    @classmethod
    def build_for_checkpoint(cls, config: PolicyConfig, stats, path: Path) -> "Policy":
        """Hook: build the (untrained) module a checkpoint's weights are loaded into."""
        return cls(config, stats)


def _dedup_contiguous(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses shared storage: give every tensor its own contiguous copy."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in sd.items()}


def resolve_policy_dir(path: str | Path) -> Path:
    """A policy folder from a policy folder, a checkpoint step folder or a run folder.

    Step folders and run folders resolve to their EMA weights when present (what the
    trainer exports for inference), else the raw weights.
    """
    from robolearn.training.checkpoint import latest_checkpoint

    p = Path(path)
    if (p / WEIGHTS_FILE).is_file():
        return p
    if not p.exists():
        raise FileNotFoundError(f"checkpoint {p} does not exist; pass a run folder, a "
                                f"checkpoints/step_* folder or a policy folder")
    step = p if (p / "policy").is_dir() else latest_checkpoint(p)
    if step is None:
        raise FileNotFoundError(f"{p} holds no policy: expected {WEIGHTS_FILE} (a policy folder), "
                                f"policy/ (a checkpoint step) or checkpoints/ (a run folder)")
    for name in ("policy_ema", "policy"):
        if (Path(step) / name / WEIGHTS_FILE).is_file():
            return Path(step) / name
    raise FileNotFoundError(f"{step} has no policy_ema/ or policy/ folder")


def mismatched_keys(want: Mapping[str, torch.Tensor], got: Mapping[str, torch.Tensor]) -> list[str]:
    """Keys of state dict ``want`` that ``got`` lacks or holds with another shape."""
    return sorted(k for k in want if k not in got or got[k].shape != want[k].shape)


def init_from_checkpoint(policy: Policy, path: str | Path) -> int:
    """Copy every weight and normalisation statistic of the policy saved at ``path`` (a
    run, checkpoint step or policy folder of the same type and sizes) into ``policy``:
    fine-tuning a pretrained policy (``policy.init_from``). Returns the tensors copied."""
    src = load_policy(path)
    if src.name != policy.name:
        raise ValueError(f"{path} holds a {src.name} policy; init_from needs a {policy.name} one")
    mine, theirs = policy.state_dict(), src.state_dict()
    optional = lambda k: k.startswith(policy.optional_weights)  # noqa: E731
    fresh = [k for k in mine if k not in theirs and optional(k)]
    theirs = {k: v for k, v in theirs.items() if k in mine or not optional(k)}
    bad = mismatched_keys({k: v for k, v in mine.items() if k not in fresh}, theirs)
    bad += sorted(set(theirs) - set(mine))
    if bad:
        raise ValueError(f"{path} does not fit this {policy.name} (mismatched {bad[:3]}); "
                         f"use the pretraining run's policy sizes")
    frozen = {n for n, p in policy.named_parameters() if not p.requires_grad}
    if frozen & set(fresh):
        raise ValueError(f"{path} lacks {sorted(frozen & set(fresh))[:3]}, which this policy "
                         "keeps frozen: they would stay at their random init. Start from a "
                         "run that trained them (e.g. a flow_vla perception stage) or unfreeze "
                         "them (policy.freeze_vision=false)")
    if fresh:
        log.info("init_from %s: %d optional tensors start fresh (%s)", path, len(fresh),
                 ", ".join(sorted({k.split('.')[0] for k in fresh})))
    policy.load_state_dict(theirs, strict=not fresh)
    return len(mine) - len(fresh)


#: action spaces robolearn's env backends take (``EnvBackend.action_space``)
SIM_ACTION_SPACES = ("joint_pos", "ee_delta", "xy_target")


def check_action_space(policy: "Policy", drives: str, where: str) -> None:
    """Refuse a policy whose actions command another action space than the one ``where``
    takes (e.g. end-effector deltas sent as joint targets).  Only the action spaces the
    sims define are compared: checkpoints saved before the field existed (empty), trained
    on a mixed store or on converted data (``lerobot``, robomimic's controller names) are
    not checked."""
    have = getattr(policy.config, "action_space", "")
    if have in SIM_ACTION_SPACES and drives in SIM_ACTION_SPACES and have != drives:
        fix = (f"set env.action_space={have}" if {have, drives} <= {"joint_pos", "ee_delta"}
               else f"use a policy trained on {drives} actions")
        raise ValueError(f"{where} takes {drives} actions but the policy was trained on "
                         f"{have} actions: {fix}")


def saved_config_dict(config: dict) -> dict:
    """A checkpoint's config.json fields, with what older checkpoints lack filled in as
    they were trained: saved before the state scale floor existed, a policy divided by the
    data's std however small, and is evaluated (and resumed) that way."""
    return {"state_scale_floor": 0.0, **config}


def load_policy(path: str | Path, device: str | torch.device = "cpu") -> Policy:
    """Build a policy from a ``save_pretrained`` folder (no pickles involved), or from a
    checkpoint step folder or a run folder (their EMA weights: :func:`resolve_policy_dir`)."""
    from safetensors.torch import load_file

    from robolearn.policies.registry import get_policy_class

    path = resolve_policy_dir(path)
    if not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{path} is not a policy checkpoint (no {CONFIG_FILE}); pass the "
                                f"folder written by save_pretrained / the trainer")
    meta = json.loads((path / CONFIG_FILE).read_text())
    cls = get_policy_class(meta["type"])
    config = cls.config_class.from_dict(saved_config_dict(meta["config"]))
    stats = json.loads((path / STATS_FILE).read_text()) if (path / STATS_FILE).is_file() else None
    policy = cls.build_for_checkpoint(config, stats, path)
    policy.load_state_dict(load_file(str(path / WEIGHTS_FILE)), strict=True)
    return policy.to(device).eval()
