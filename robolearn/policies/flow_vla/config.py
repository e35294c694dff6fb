"""Config of the flow-matching VLA (the π0 recipe, Black et al. 2024)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from robolearn.policies.config import PolicyConfig


@dataclass
class FlowVLAConfig(PolicyConfig):
    """Vision-language prefix (SigLIP + Llama/Gemma-class LM) and a smaller action expert
    that attends to the prefix KV cache and predicts a flow-matching velocity field."""

    name: ClassVar[str] = "flow_vla"

    n_obs: int = 1
    """Observation steps (π0 reads only the current one)."""
    horizon: int = 16
    """Action chunk length H."""
    n_action_steps: int = 8
    """Actions executed per predicted chunk."""
    image_norm: str = "identity"
    """Images are scaled to [-1, 1] as SigLIP expects, not by store stats."""
    action_norm: str = "mean_std"
    """Normalisation of actions (π0/openpi use mean/std)."""
    max_state_dim: int = 32
    """State is zero-padded to this size so arms with different state sizes share one model."""
    max_action_dim: int = 32
    """Actions are zero-padded to this size; padded dims are masked out of the loss."""
    max_text_tokens: int = 32
    """Instruction tokens kept (byte tokenizer: about one per character, plus BOS/EOS)."""
    vision_type: str = "siglip"
    """Image encoder: siglip (transformers SigLIP ViT, as π0), conv (small strided CNN) or efficientnet_lite0 (ImageNet weights with vision_pretrained_path=registry:efficientnet_lite0)."""
    conv_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])
    """Conv layers' channels (vision_type=conv); tokens = last map's cells (96 px, 4 layers: 36)."""
    image_pos_embed: bool = False
    """Add a learned embedding per camera and image token to the image tokens: conv cells have no position of their own (SigLIP patches do, but not which camera they come from)."""
    image_keypoints: bool = False
    """vision_type=conv: one more prefix token per camera holding the spatial-softmax keypoints of its last feature map (the expected 2-D image position of each channel, Levine et al. / Diffusion Policy): image coordinates finer than the 6 x 6 cells, which a grasp needs."""
    scene_aux_weight: float = 0.0
    """Training only: weight of an auxiliary loss that predicts the scene's privileged state (observation.environment_state: object positions, recorded by robolearn-collect --scene-state) from the pooled camera features and the arm's state, so the image encoder learns where the objects are (0 = off). The policy never reads that state: inference needs cameras and arm state only."""
    scene_head: str = "pool"
    """How the scene head (scene_aux_weight > 0) reads the cameras. pool: an MLP on the image encoder's pooled features and the arm state. keypoints: a small fully convolutional network per camera finds every object (and the end effector) as an image point, and an MLP lifts the points and the arm state to the object positions; it is supervised by observation.keypoints.<camera> as well (robolearn-collect --scene-state records them) and learns from a few layouts what pool needs thousands for (robolearn/policies/flow_vla/keypoints.py)."""
    scene_token: bool = False
    """Feed the scene head's estimate (needs scene_aux_weight > 0) to the policy as one more prefix token: the object positions the head reads off the cameras, in the compact form a state-based policy learns from. Gradients of the action loss stop at the estimate, which the auxiliary loss alone trains. Inference still needs cameras and arm state only."""
    scene_token_teacher: bool = False
    """Training only (needs scene_token): the token carries the recorded object positions (observation.environment_state) instead of the head's estimate, so the policy learns the exact positions-to-actions map rather than one blurred by the estimate's error (which makes it under-react to where the cube really is); inference feeds the head's estimate, as always."""
    scene_token_ee: int = -1
    """Index in observation.state of the end effector's x (its y, z follow; 8 on the Panda tabletop: 7 joints, the gripper, then the EE pose). >= 0 (needs scene_token): the token also carries each object's position minus the end effector's, so "the gripper is 2 cm short of the cube" is read off one token instead of being worked out from two differently normalised ones (-1 = off)."""
    perception_only: bool = False
    """Train only the image encoder and the scene head (needs scene_aux_weight > 0) on labelled frames, e.g. a robolearn-collect --scene-frames store of many layouts: the stage before the policy (train/flow_vla_perception), whose run a policy then starts from (policy.init_from). The language model and the action expert are not trained; the checkpoint predicts no useful actions."""
    freeze_vision: bool = False
    """Keep the image encoder and the scene head as they start (e.g. from a perception stage through init_from): no gradient reaches them, so the policy stage cannot pull the head back towards its own few layouts (it drifts from 0.7 to 1.4 cm when trained on 100 demos), and the encoder runs without a backward pass. The auxiliary scene loss is then only reported."""
    camera_tokens: bool = True
    """Put every camera's image tokens in the prefix. False (needs scene_token): the cameras reach the policy only through the scene head's estimate - the compact object positions a state-based policy learns from - and the prefix is ~2x shorter."""
    scene_state_dim: int = 0
    """Size of observation.environment_state (0 = take it from the dataset stats when scene_aux_weight > 0)."""
    patch_size: int = 24
    """SigLIP patch size (image_size must be a multiple; 96/24 = 4x4 = 16 tokens per camera)."""
    vision_width: int = 128
    """SigLIP hidden size."""
    vision_layers: int = 3
    """SigLIP transformer layers."""
    vision_heads: int = 4
    """SigLIP attention heads."""
    vision_mlp: int = 256
    """SigLIP MLP size."""
    lm_type: str = "llama"
    """transformers model type of the language model and expert: llama, gemma, qwen2 ..."""
    lm_width: int = 192
    """Language model hidden size."""
    lm_layers: int = 4
    """Language model layers (the expert has the same number: it reads each layer's KV)."""
    lm_heads: int = 4
    """Query heads of the LM and of the expert."""
    lm_kv_heads: int = 1
    """Key/value heads (multi-query attention as in Gemma-2B; shared KV layout with the expert)."""
    head_dim: int = 64
    """Attention head size of the LM and of the expert."""
    lm_mlp: int = 512
    """Language model MLP size."""
    expert_width: int = 128
    """Action expert hidden size (smaller than the LM, as π0's 300M expert next to a 2.6B VLM)."""
    expert_mlp: int = 384
    """Action expert MLP size."""
    noise_scale: float = 1.0
    """Inference temperature: the flow starts from noise_scale x N(0, I) (0 = deterministic; lower trades sample diversity for precision). Training is unaffected."""
    num_steps: int = 10
    """Euler steps integrating the flow from noise (t=1) to actions (t=0) at inference."""
    time_beta_alpha: float = 1.5
    """Flow time ~ Beta(alpha, beta), emphasising noisy times (π0 uses Beta(1.5, 1))."""
    time_beta_beta: float = 1.0
    """Second Beta parameter of the flow-time distribution."""
    time_min: float = 0.001
    """Flow times are squashed into [time_min, 1] (never exactly clean)."""
    use_kv_cache: bool = True
    """Compute the prefix once per chunk and reuse its KV cache across the Euler steps."""
    vision_pretrained_path: str = ""
    """SigLIP: a local folder with weights; efficientnet_lite0: a state-dict file or registry:efficientnet_lite0 (empty = random init from this config)."""
    lm_pretrained_path: str = ""
    """Local folder with language-model weights, or registry:smollm2-135m (empty = random init from this config)."""
    lm_pretrained_layers: int = 0
    """Keep only the first N layers of a pretrained language model (0 = all): a shallow slice of a pretrained LM trains at CPU speed."""
    pretrained_init: bool = True
    """False: build the pretrained paths' architectures and tokenizer but initialise the weights randomly (the ablation of pretraining under the same budget)."""
    attn_implementation: str = "sdpa"
    """transformers attention kernel: sdpa or eager."""

    @classmethod
    def tiny(cls) -> "FlowVLAConfig":
        return cls(n_obs=1, horizon=4, n_action_steps=2, image_size=16, patch_size=8,
                   max_state_dim=8, max_action_dim=8, max_text_tokens=12, vision_width=32,
                   vision_layers=1, vision_heads=2, vision_mlp=64, lm_width=32, lm_layers=2,
                   lm_heads=2, lm_kv_heads=1, head_dim=16, lm_mlp=64, expert_width=16,
                   expert_mlp=32, num_steps=3)

    def resolve_features(self, stats, image_keys=None):
        super().resolve_features(stats, image_keys)
        if self.scene_aux_weight > 0 and self.scene_state_dim <= 0:
            from robolearn import keys as K

            if K.OBS_ENV_STATE not in stats:
                raise ValueError(
                    f"scene_aux_weight={self.scene_aux_weight} needs the scene state "
                    f"({K.OBS_ENV_STATE}) in the training store, which has none: collect "
                    "the demos with robolearn-collect --scene-state, or set "
                    "policy.scene_aux_weight=0")
            self.scene_state_dim = len(stats[K.OBS_ENV_STATE]["mean"])
        return self

    def start_requirement(self) -> str | None:
        if self.freeze_vision and self.scene_token and not self.init_from:
            return ("policy.init_from is not set, and policy.freeze_vision keeps the scene head "
                    "as it starts (a fresh one knows nothing): pass policy.init_from=<a "
                    "train/flow_vla_perception run> (or policy.freeze_vision=false)")
        return None

    def validate(self) -> None:
        super().validate()
        if self.scene_aux_weight < 0:
            raise ValueError(f"scene_aux_weight must be >= 0 (0 = off), got "
                             f"{self.scene_aux_weight}")
        if self.num_steps < 1 or self.noise_scale < 0:
            raise ValueError(f"num_steps must be >= 1 and noise_scale >= 0, got "
                             f"{self.num_steps} and {self.noise_scale}")
        if self.scene_aux_weight > 0 and self.scene_state_dim <= 0:
            raise ValueError("scene_aux_weight > 0 needs scene_state_dim: resolve the config's "
                             "features from the stats of a store collected with "
                             "robolearn-collect --scene-state")
        if self.scene_token and self.scene_aux_weight <= 0:
            raise ValueError("scene_token feeds the scene head's estimate to the policy; the "
                             "head is trained by the auxiliary loss: set scene_aux_weight > 0 "
                             "(e.g. 1.0) or scene_token=false")
        if self.scene_token_teacher and not self.scene_token:
            raise ValueError("scene_token_teacher replaces the scene token's estimate while "
                             "training: set scene_token=true (with scene_aux_weight > 0)")
        if self.scene_token_ee >= 0 and not self.scene_token:
            raise ValueError("scene_token_ee adds the objects' offsets from the end effector to "
                             "the scene token: set scene_token=true (with scene_aux_weight > 0)")
        if self.scene_token_ee >= 0 and self.state_dim and \
                self.scene_token_ee + 3 > self.state_dim:
            raise ValueError(f"scene_token_ee={self.scene_token_ee}: the end effector's xyz "
                             f"would run past the {self.state_dim}-D observation.state; give "
                             "the index of its x (8 for the Panda tabletop)")
        if not self.camera_tokens and not self.scene_token:
            raise ValueError("camera_tokens=false leaves the cameras only the scene token as "
                             "their way into the policy: set scene_token=true (with "
                             "scene_aux_weight > 0), or camera_tokens=true")
        if self.perception_only and self.freeze_vision:
            raise ValueError("perception_only trains only the image encoder and the scene head, "
                             "which freeze_vision keeps fixed: nothing would train; set "
                             "freeze_vision=false for the perception stage")
        if self.perception_only and self.scene_aux_weight <= 0:
            raise ValueError("perception_only trains the image encoder on the scene head's "
                             "loss: set scene_aux_weight > 0 (e.g. 1.0)")
        if self.scene_aux_weight > 0 and not self.image_keys:
            raise ValueError("scene_aux_weight > 0 trains the image encoder to see the scene; "
                             "this policy reads no camera (set it to 0)")
        if self.scene_head not in ("pool", "keypoints"):
            raise ValueError(f"scene_head must be pool or keypoints, got {self.scene_head!r}")
        if self.scene_head == "keypoints" and self.image_size % 4:
            raise ValueError(f"scene_head=keypoints needs an image_size divisible by 4, got "
                             f"{self.image_size}")
        if self.vision_type not in ("siglip", "conv", "efficientnet_lite0"):
            raise ValueError(f"vision_type must be siglip, conv or efficientnet_lite0, got "
                             f"{self.vision_type!r}")
        if self.image_keypoints and self.vision_type != "conv":
            raise ValueError("image_keypoints needs vision_type=conv (its spatial-softmax "
                             f"feature map), got vision_type={self.vision_type!r}")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} must be a multiple of patch_size "
                             f"{self.patch_size}")
        # a learned state encoder reads the unpadded state: no max_state_dim limit then
        state_over = self.state_dim > self.max_state_dim and not self.state_encoder_dim
        if state_over or self.action_dim > self.max_action_dim:
            raise ValueError(f"state_dim/action_dim ({self.state_dim}/{self.action_dim}) exceed "
                             f"max_state_dim/max_action_dim ({self.max_state_dim}/"
                             f"{self.max_action_dim}); raise the max dims")
