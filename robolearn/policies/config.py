"""Config base shared by every policy (dataclasses only: cheap to import for hydra schemas)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Mapping

from robolearn import keys as K


@dataclass
class PolicyConfig:
    """Fields every policy has; each policy's config extends it."""

    name: ClassVar[str] = ""
    #: fields robolearn-train fills from the training store when unset (0 / ""): a
    #: checkpoint saved before one existed has it unset, which is not another setting
    FROM_STORE: ClassVar[tuple[str, ...]] = ("fps", "action_space")

    n_obs: int = 2
    """Observation steps the policy reads (the current one and n_obs-1 before it)."""
    horizon: int = 16
    """Length of the predicted action chunk."""
    n_action_steps: int = 8
    """Actions of each chunk executed by select_action before predicting a new chunk."""
    state_dim: int = 0
    """Dimension of observation.state (0 = take it from the dataset stats)."""
    action_dim: int = 0
    """Dimension of the action (0 = take it from the dataset stats)."""
    image_keys: list[str] = field(default_factory=list)
    """Camera keys the policy reads, e.g. observation.images.front (empty = all in the dataset)."""
    fps: float = 0.0
    """Rate (Hz) of the training actions: chunk action i is the set-point (i+1)/fps s after the observation (0 = robolearn-train takes the store's recording rate). Deployments at another control rate interpolate chunks onto their ticks."""
    action_space: str = ""
    """What the actions command, as the store's episodes record it: joint_pos (absolute joint targets + gripper), ee_delta (end-effector deltas + gripper), xy_target, ... (empty = robolearn-train takes the store's). Evaluation and the ROS policy node refuse a policy whose action space is not the one they drive."""
    image_size: int = 96
    """Square side the images are resized to before encoding (pixels)."""
    image_shift_px: int = 0
    """Training augmentation: random image shift of up to this many pixels (0 = off)."""
    encoder_init: str = ""
    """Initialise the image encoder from a pretraining run (train/pretrain) or any policy with the same encoder ("" = random)."""
    freeze_encoder: bool = False
    """Keep the initialised encoders (image and state) fixed while training (the frozen-feature protocol)."""
    init_from: str = ""
    """Start from every weight (and the normalisation statistics) of a run, checkpoint or policy folder of the same policy type and sizes: fine-tuning a pretrained policy ("" = fresh)."""
    state_encoder_dim: int = 0
    """Encode observation.state with a learned MLP to this many features (bc, diffusion, iql, pretrain; flow_vla before its state token, then tied to this arm's state size), which train/pretrain can pretrain and encoder_init moves like the image encoder (0 = feed the normalised state as it is)."""
    state_norm: str = "mean_std"
    """Normalisation of observation.state: mean_std, min_max or identity."""
    state_scale_floor: float = 0.01
    """Smallest std (mean_std) or range (min_max) a varying observation.state feature is divided by (0 = its data scale however small). A top-down expert's EE orientation varies ~1e-3 in the demos: divided by that, a one-degree tilt of a closed-loop rollout is a 10+ sigma input and the policy's actions run away."""
    action_norm: str = "min_max"
    """Normalisation of the action: mean_std, min_max or identity."""
    image_norm: str = "mean_std"
    """Normalisation of images (after scaling to [0, 1]): mean_std, min_max or identity."""

    @classmethod
    def tiny(cls) -> "PolicyConfig":
        """A few-thousand-parameter config for tests and the demo."""
        return cls()

    def start_requirement(self) -> str | None:
        """Why a training run of this config cannot start as set (e.g. it needs
        ``init_from``), with the fix; None when it can. Unlike :meth:`validate` this is not
        asked when a policy is built or loaded, only when a run starts."""
        return None

    def validate(self) -> None:
        if self.state_scale_floor < 0:
            raise ValueError(f"state_scale_floor must be >= 0 (0 = off), got "
                             f"{self.state_scale_floor}")
        if self.n_action_steps > self.horizon:
            raise ValueError(f"n_action_steps ({self.n_action_steps}) must be <= horizon "
                             f"({self.horizon})")
        if self.state_dim <= 0 or self.action_dim <= 0:
            raise ValueError(f"{type(self).__name__}: state_dim and action_dim must be set (> 0); "
                             f"call resolve_features(stats) with the dataset's stats first")

    def resolve_features(self, stats: Mapping[str, Any], image_keys: list[str] | None = None):
        """Fill state_dim / action_dim / image_keys left at 0/empty from dataset stats."""
        if self.state_dim <= 0:
            self.state_dim = len(stats[K.OBS_STATE]["mean"])
        if self.action_dim <= 0:
            self.action_dim = len(stats[K.ACTION]["mean"])
        if not self.image_keys:
            self.image_keys = list(image_keys if image_keys is not None
                                   else [k for k in stats if K.is_image_key(k)])
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PolicyConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {unknown}; valid: {sorted(known)}")
        return cls(**dict(d))
