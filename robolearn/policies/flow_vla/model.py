"""The flow-matching VLA: the π0 recipe (Black et al. 2024) on transformers + diffusers parts.

Layout of one forward pass::

    prefix  = [SigLIP patch tokens (or conv cells [+ keypoint token]) of every camera |
               instruction tokens | state token]
              -> language model (bidirectional over the prefix) -> per-layer KV cache
    suffix  = [H noisy action tokens, each fused with the flow time]
              -> action expert (same layer count / KV layout as the LM, own smaller
                 weights) attending to the prefix KV cache and to all suffix tokens
              -> velocity field (B, H, max_action_dim)

Training is conditional flow matching: ``x_t = t * noise + (1 - t) * actions`` with the
target velocity ``noise - actions`` and ``t ~ Beta(1.5, 1)`` (π0's emphasis on noisy
times).  Inference integrates from ``t = 1`` (noise) to ``t = 0`` with
``num_steps`` Euler steps (diffusers' ``FlowMatchEulerDiscreteScheduler``, which uses
the same convention); the prefix and its KV cache are computed once per chunk.

Optionally (``scene_aux_weight``) a head regresses the scene's privileged object
positions from the pooled camera features and the arm's state, so the image encoder
learns where the objects are; with ``scene_token`` its (detached) estimate also enters
the prefix as one token. Inference never needs the privileged state.

State and actions are zero-padded to ``max_state_dim`` / ``max_action_dim`` and the
padded action dims are masked out of the loss, so arms of different sizes share one
model (openpi does the same).
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from robolearn import keys as K
from robolearn.policies.base import Policy
from robolearn.policies.encoders import (ConvImageEncoder, EfficientNetImageEncoder,
                                         SiglipImageEncoder, mlp_state_encoder,
                                         prepare_images)
from robolearn.policies.flow_vla.config import FlowVLAConfig
from robolearn.policies.flow_vla.keypoints import KeypointSceneHead
from robolearn.policies.tokenizer import ByteTokenizer

log = logging.getLogger(__name__)

VISION_CONFIG, LM_CONFIG, TOKENIZER_DIR = "vision_config.json", "lm_config.json", "tokenizer"

#: optional batch key: bool (B, max_action_dim), True for the real action dims of each sample
ACTION_DIM_MASK = "action_dim_mask"


def sincos_time_embedding(t: torch.Tensor, dim: int, min_period: float = 4e-3,
                          max_period: float = 4.0) -> torch.Tensor:
    """π0's sine-cosine embedding of flow time t in [0, 1]: (B,) -> (B, dim)."""
    frac = torch.linspace(0.0, 1.0, dim // 2, device=t.device, dtype=torch.float64)
    period = min_period * (max_period / min_period) ** frac
    arg = (2 * math.pi / period)[None] * t.double()[:, None]
    return torch.cat([arg.sin(), arg.cos()], dim=-1).float()


def attention_mask_4d(allowed: torch.Tensor, impl: str, dtype: torch.dtype) -> torch.Tensor:
    """bool (B, Q, K) -> the (B, 1, Q, K) mask the attention kernel ``impl`` takes.

    transformers passes a 4-D mask through unchanged, so we choose the attention pattern
    (bidirectional prefix, prefix-to-suffix block) instead of its default causal one.
    SDPA takes the boolean mask as is (valid under autocast whatever the query dtype);
    eager attention adds a float mask (0 where allowed, the dtype's min elsewhere).
    """
    if impl == "sdpa":
        return allowed[:, None]
    return torch.where(allowed, 0.0, torch.finfo(dtype).min).to(dtype)[:, None]


def _load_lm_slice(path: str, layers: int, **kwargs) -> nn.Module:
    """``AutoModel.from_pretrained(path)`` built ``layers`` deep (0: all), fp32.

    transformers' load report would list every layer past the slice as UNEXPECTED on each
    run; those are dropped on purpose, so the report is silenced and checked here instead:
    weights the model lacks in the file (left at random init) and unexpected keys that are
    not past the slice are warned about."""
    import re

    from transformers import AutoModel
    from transformers.modeling_utils import logger as hf_log

    level = hf_log.level
    hf_log.setLevel(logging.ERROR)
    try:
        depth = {"num_hidden_layers": layers} if layers else {}
        lm, info = AutoModel.from_pretrained(path, dtype=torch.float32, output_loading_info=True,
                                             **depth, **kwargs)
    finally:
        hf_log.setLevel(level)
    past = re.compile(r"(?:^|\.)layers\.(\d+)\.")

    def beyond(key: str) -> bool:
        m = past.search(key)
        return bool(layers) and m is not None and int(m.group(1)) >= layers

    unexpected = [k for k in info["unexpected_keys"] if not beyond(k)]
    if info["missing_keys"]:
        log.warning("%s lacks %d of the LM's weights (left at random init): %s", path,
                    len(info["missing_keys"]), sorted(info["missing_keys"])[:5])
    if unexpected:
        log.warning("%s holds %d weights the LM does not use: %s", path, len(unexpected),
                    sorted(unexpected)[:5])
    log.info("pretrained LM from %s: %d layers%s", path, lm.config.num_hidden_layers,
             " (a slice)" if layers else "")
    return lm

class _HFTokenizer:
    """Adapter giving a transformers tokenizer the ``(texts, max_length) -> ids, mask`` call."""

    def __init__(self, tok):
        if tok.pad_token is None:  # decoder-only LMs often have none; padding is masked anyway
            tok.pad_token = tok.eos_token
        self.tok = tok

    def __call__(self, texts, max_length: int):
        enc = self.tok(list(texts), padding="max_length", truncation=True, max_length=max_length,
                       return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"].bool()


def _pretrained_tokenizer(path: str, vocab_size: int):
    """The checkpoint's own tokenizer if it ships one, else the byte tokenizer (when the
    embedding table is large enough for its 259 ids)."""
    from pathlib import Path

    names = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
    if any((Path(path) / n).is_file() for n in names):
        from transformers import AutoTokenizer

        return _HFTokenizer(AutoTokenizer.from_pretrained(path))
    if vocab_size >= ByteTokenizer.vocab_size:
        return ByteTokenizer()
    raise ValueError(f"{path} has no tokenizer files and a vocabulary of {vocab_size} < "
                     f"{ByteTokenizer.vocab_size}; add the tokenizer files to the folder")


class FlowVLAPolicy(Policy):
    config_class = FlowVLAConfig
    name = "flow_vla"
    # the LM's last-layer MLP/norm never reach the loss (only its KV does), as in π0
    ddp_find_unused_parameters = True
    inference_keys = ("noise_scale", "num_steps", "use_kv_cache")
    # perception add-ons and the training-only scene head: fine-tuning may add or drop them
    optional_weights = ("image_pos", "image_proj.", "keypoint_proj.", "scene_head.",
                        "scene_norm.", "scene_proj.")

    def __init__(self, config: FlowVLAConfig, stats: Mapping[str, Any] | None = None,
                 tokenizer=None, backbone_dir: str | Path | None = None):
        """``backbone_dir``: a checkpoint folder whose saved backbone configs (and tokenizer)
        replace the pretrained paths - the architecture is rebuilt, the weights come from
        the checkpoint, so the original pretrained folders need not exist any more."""
        super().__init__(config, stats)
        c = config
        self._warned_long_text = False
        if backbone_dir is not None:
            self.vision, self.lm, self.tokenizer = self._build_from_saved(Path(backbone_dir), c)
        else:
            self.vision = self._build_vision(c)
            self.lm, self.tokenizer = self._build_lm(c, tokenizer)
        lm_cfg = self.lm.config
        self.expert = self._build_expert(lm_cfg, c)
        vw, lw, ew = self.vision.token_dim, lm_cfg.hidden_size, c.expert_width
        n_cams = len(c.image_keys)
        tok_cams = n_cams if c.camera_tokens else 0  # cameras with tokens in the prefix
        self.image_proj = nn.Linear(vw, lw) if c.camera_tokens else None
        self.image_pos = (nn.Parameter(0.02 * torch.randn(tok_cams, self.vision.n_tokens, lw))
                          if c.image_pos_embed and tok_cams else None)
        self.keypoint_proj = (nn.Linear(self.vision.out_dim, lw)
                              if c.image_keypoints and tok_cams else None)
        self.scene_head = self.scene_norm = None
        if c.scene_aux_weight > 0:  # pooled cameras + state -> scene (training only,
            # unless scene_token feeds its estimate to the prefix)
            from robolearn.policies.normalize import Normalizer

            self.scene_norm = Normalizer({K.OBS_ENV_STATE: "mean_std"},
                                         {K.OBS_ENV_STATE: c.scene_state_dim}, stats)
            if c.scene_head == "keypoints":
                self.scene_head = KeypointSceneHead(n_cams, c.image_size, c.state_dim,
                                                    c.scene_state_dim)
            else:
                d_in = n_cams * self.vision.out_dim + c.state_dim
                self.scene_head = nn.Sequential(nn.Linear(d_in, 256), nn.SiLU(),
                                                nn.Linear(256, c.scene_state_dim))
        scene_in = c.scene_state_dim + (3 * (c.scene_state_dim // 3) if c.scene_token_ee >= 0
                                         else 0)
        self.scene_proj = (nn.Linear(scene_in, lw)
                           if c.scene_token and self.scene_head is not None else None)
        # optional learned state MLP (state_encoder_dim > 0): the one train/pretrain pretrains
        # and encoder_init moves in; it reads this arm's state_dim, not the padded state
        self.state_encoder = (mlp_state_encoder(c.state_dim, c.state_encoder_dim)
                              if c.state_encoder_dim > 0 else None)
        self.state_proj = nn.Linear(c.state_encoder_dim or c.max_state_dim, lw)
        self.action_in = nn.Linear(c.max_action_dim, ew)
        self.action_time_mlp = nn.Sequential(nn.Linear(2 * ew, ew), nn.SiLU(), nn.Linear(ew, ew))
        self.action_out = nn.Linear(ew, c.max_action_dim)
        self._time_dist = torch.distributions.Beta(c.time_beta_alpha, c.time_beta_beta)
        if c.freeze_vision:  # perception as init_from left it: no gradient, no optimiser state
            for m in (self.vision, self.scene_head):
                if m is not None:
                    m.requires_grad_(False)

    # ---- construction ---------------------------------------------------------------------
    @staticmethod
    def _build_vision(c: FlowVLAConfig, load_weights: bool = True) -> nn.Module:
        """The configured image encoder; pretrained weights only if ``load_weights`` and
        ``c.pretrained_init`` (a checkpoint being rebuilt brings its own weights)."""
        weights = load_weights and c.pretrained_init
        if c.vision_type == "conv":
            return ConvImageEncoder(c.image_size, c.conv_channels, out_dim=c.conv_channels[-1])
        if c.vision_type == "efficientnet_lite0":
            return EfficientNetImageEncoder(c.image_size,
                                            c.vision_pretrained_path if weights else "")
        if c.vision_pretrained_path:
            if weights:
                return SiglipImageEncoder.from_pretrained(c.vision_pretrained_path)
            from transformers import SiglipVisionConfig, SiglipVisionModel

            vcfg = SiglipVisionConfig.from_pretrained(c.vision_pretrained_path)
            return SiglipImageEncoder(SiglipVisionModel(vcfg))
        return SiglipImageEncoder.from_config(c.image_size, c.patch_size, c.vision_width,
                                              c.vision_layers, c.vision_heads, c.vision_mlp,
                                              c.attn_implementation)

    @staticmethod
    def _build_lm(c: FlowVLAConfig, tokenizer):
        from transformers import AutoConfig, AutoModel

        if c.lm_pretrained_path:
            from robolearn.policies.pretrained import resolve_lm

            path = resolve_lm(c.lm_pretrained_path)
            # a shallow slice of a deep pretrained LM: only the first N layers are built
            depth = {"num_hidden_layers": c.lm_pretrained_layers} if c.lm_pretrained_layers else {}
            if c.pretrained_init:
                # fp32 master weights whatever the file holds (autocast handles bf16 compute)
                lm = _load_lm_slice(path, c.lm_pretrained_layers,
                                    attn_implementation=c.attn_implementation)
            else:  # same architecture, random weights: the ablation of pretraining
                lm = AutoModel.from_config(AutoConfig.from_pretrained(path, **depth),
                                           attn_implementation=c.attn_implementation)
            if tokenizer is None:
                tokenizer = _pretrained_tokenizer(path, lm.config.vocab_size)
            return lm, tokenizer
        tokenizer = tokenizer or ByteTokenizer()
        cfg = AutoConfig.for_model(
            c.lm_type, vocab_size=ByteTokenizer.vocab_size, hidden_size=c.lm_width,
            intermediate_size=c.lm_mlp, num_hidden_layers=c.lm_layers,
            num_attention_heads=c.lm_heads, num_key_value_heads=c.lm_kv_heads,
            head_dim=c.head_dim, max_position_embeddings=1024, pad_token_id=0)
        return AutoModel.from_config(cfg, attn_implementation=c.attn_implementation), tokenizer

    @staticmethod
    def _build_expert(lm_cfg, c: FlowVLAConfig) -> nn.Module:
        """Same depth, heads and KV layout as the LM (it reads the LM's cache layer by layer),
        narrower residual stream and MLP."""
        from transformers import AutoConfig, AutoModel

        d = lm_cfg.to_dict()
        for k in ("architectures", "_name_or_path", "transformers_version", "model_type",
                  "torch_dtype", "dtype"):
            d.pop(k, None)
        d.update(hidden_size=c.expert_width, intermediate_size=c.expert_mlp, vocab_size=1,
                 head_dim=getattr(lm_cfg, "head_dim", None)
                 or lm_cfg.hidden_size // lm_cfg.num_attention_heads, pad_token_id=None,
                 bos_token_id=None, eos_token_id=None)
        cfg = AutoConfig.for_model(lm_cfg.model_type, **d)
        expert = AutoModel.from_config(cfg, attn_implementation=c.attn_implementation)
        expert.embed_tokens = None  # the expert only ever gets inputs_embeds
        return expert

    # ---- self-contained checkpoints of pretrained backbones ----------------------------------
    def save_extra(self, path: Path) -> None:
        c = self.config
        if not (c.vision_pretrained_path or c.lm_pretrained_path):
            return  # rebuilt from config.json alone
        if c.vision_type == "siglip":
            self.vision.model.config.to_json_file(str(Path(path) / VISION_CONFIG))
        self.lm.config.to_json_file(str(Path(path) / LM_CONFIG))
        if isinstance(self.tokenizer, _HFTokenizer):
            self.tokenizer.tok.save_pretrained(str(Path(path) / TOKENIZER_DIR))

    @classmethod
    def build_for_checkpoint(cls, config, stats, path: Path) -> "FlowVLAPolicy":
        if (Path(path) / LM_CONFIG).is_file():
            return cls(config, stats, backbone_dir=path)
        return cls(config, stats)

    @staticmethod
    def _build_from_saved(path: Path, c: FlowVLAConfig):
        from transformers import AutoConfig, AutoModel, SiglipVisionConfig, SiglipVisionModel

        if (path / VISION_CONFIG).is_file():
            vcfg = SiglipVisionConfig.from_json_file(str(path / VISION_CONFIG))
            vision = SiglipImageEncoder(SiglipVisionModel(vcfg))
        else:  # conv / EfficientNet: the config names the architecture, the weights follow
            vision = FlowVLAPolicy._build_vision(c, load_weights=False)
        lm_cfg = AutoConfig.from_pretrained(str(path / LM_CONFIG))
        lm = AutoModel.from_config(lm_cfg, attn_implementation=c.attn_implementation)
        tok_dir = path / TOKENIZER_DIR
        if tok_dir.is_dir():
            from transformers import AutoTokenizer

            tokenizer = _HFTokenizer(AutoTokenizer.from_pretrained(str(tok_dir)))
        else:
            tokenizer = ByteTokenizer()
        return vision, lm, tokenizer

    encoder_note = ("flow_vla takes only a state encoder: its image encoders load their own "
                    "weights (vision_pretrained_path); pretrain without cameras")

    def encoder_modules(self) -> dict[str, nn.Module | None]:
        """encoder_init moves the learned state encoder (state_encoder_dim > 0) in; the image
        encoders (SigLIP, EfficientNet, conv tokens) take their own pretrained weights
        (vision_pretrained_path), so there is no image part to move."""
        return {"image_encoder": None, "state_encoder": self.state_encoder}

    # ---- prefix ---------------------------------------------------------------------------
    def embed_prefix(self, obs: Mapping[str, Any], aux: dict | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images + instruction + state [+ scene estimate] -> embeddings (B, P, lm_width),
        valid mask (B, P). ``aux``: a dict that receives the scene head's normalised estimate
        (B, scene_state_dim) as ``"scene"`` (for the auxiliary loss)."""
        c = self.config
        s = self._current_state(obs)
        b = s.shape[0]
        tokens, masks = [], []
        want_scene = self.scene_head is not None and (aux is not None or
                                                      self.scene_proj is not None)
        keypoints = c.scene_head == "keypoints"
        teacher = self.training and c.scene_token_teacher
        # while the token is teacher-forced nothing reads a frozen head: skip it (the
        # estimate's error on held-out episodes is val_scene_err_cm)
        estimate = want_scene and not (teacher and c.freeze_vision)
        if c.image_keys:
            need_feats = c.camera_tokens or (estimate and not keypoints)
            imgs = self._camera_images(obs) if need_feats else None
            with torch.no_grad() if c.freeze_vision else contextlib.nullcontext():
                # (N*B, Np, vw): patch / feature-map tokens
                feats = self.vision(torch.cat(imgs)) if need_feats else None
                pool = self.vision.pool(feats) if ((estimate and not keypoints) or
                                                   self.keypoint_proj is not None) else None
                scene = None
                if estimate and keypoints:
                    out = self._keypoint_scene(obs, s)
                    scene = out["scene"]
                    if aux is not None:
                        aux["points"] = out
                elif estimate:
                    scene = self._scene_head(pool, s)
            if c.camera_tokens:
                emb = self.image_proj(feats).view(len(imgs), b, -1, self.lm.config.hidden_size)
                if self.image_pos is not None:
                    emb = emb + self.image_pos[:, None]
                if self.keypoint_proj is not None:  # + one keypoint token per camera
                    kp = self.keypoint_proj(pool).view(len(imgs), b, 1, -1)
                    emb = torch.cat([emb, kp], 2)
                tokens.append(emb.transpose(0, 1).flatten(1, 2))
                masks.append(torch.ones(tokens[-1].shape[:2], dtype=torch.bool,
                                        device=self.device))
            if want_scene:
                if aux is not None and scene is not None:
                    aux["scene"] = scene
                if self.scene_proj is not None:  # the action loss does not move the estimate
                    told = self._true_scene(obs) if teacher else scene.detach()
                    tokens.append(self.scene_proj(self._scene_token_input(obs, told))[:, None])
                    masks.append(torch.ones(b, 1, dtype=torch.bool, device=self.device))
        texts = obs.get(K.LANGUAGE) or [""] * b
        ids, m = self.tokenizer(texts, c.max_text_tokens)
        if self.training and not self._warned_long_text and bool(m[:, -1].any()):
            # the last slot filled: cut, or an exact fit? one slot more tells
            full = [texts[i] for i in m[:, -1].nonzero()[:, 0].tolist()]
            cut = self.tokenizer(full, c.max_text_tokens + 1)[1][:, -1]
            if bool(cut.any()):
                self._warn_long_text(full[int(cut.nonzero()[0])])
        tokens.append(self.lm.get_input_embeddings()(ids.to(self.device)))
        masks.append(m.to(self.device))
        s = self.state_encoder(s) if self.state_encoder is not None \
            else F.pad(s, (0, c.max_state_dim - s.shape[-1]))
        tokens.append(self.state_proj(s)[:, None])
        masks.append(torch.ones(b, 1, dtype=torch.bool, device=self.device))
        return torch.cat(tokens, 1), torch.cat(masks, 1)

    def _scene_token_input(self, obs: Mapping[str, Any], scene: torch.Tensor) -> torch.Tensor:
        """The scene token's input: the normalised scene (B, D) [+ with scene_token_ee, every
        object's xyz minus the end effector's, in decimetres: where to go, in the gripper's
        terms]."""
        c = self.config
        if c.scene_token_ee < 0:
            return scene
        raw = self.scene_norm.unnormalize(K.OBS_ENV_STATE, scene)
        ee = self._current(obs, K.OBS_STATE)[:, c.scene_token_ee: c.scene_token_ee + 3]
        n = raw.shape[-1] // 3
        rel = (raw[:, : 3 * n].reshape(-1, n, 3) - ee[:, None]).flatten(1) / 0.1
        return torch.cat([scene, rel], -1)

    def _current(self, obs: Mapping[str, Any], key: str) -> torch.Tensor:
        """A low-dim key's current step, raw: (B, D) from (B, D) or a window (B, T, D)."""
        x = torch.as_tensor(obs[key]).to(self.device).float()
        return x[:, -1] if x.ndim == 3 else x

    def _current_state(self, obs: Mapping[str, Any]) -> torch.Tensor:
        """The normalised arm state of the current step, (B, state_dim)."""
        return self.normalizer.normalize(K.OBS_STATE, self._current(obs, K.OBS_STATE))

    def _scene_head(self, pool: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Pooled camera features (n_cams * B, out_dim) + normalised state (B, D) -> the
        scene estimate (B, scene_state_dim)."""
        cams = pool.view(len(self.config.image_keys), s.shape[0], -1).transpose(0, 1).flatten(1)
        return self.scene_head(torch.cat([cams, s], -1))

    def _keypoint_scene(self, obs: Mapping[str, Any], s: torch.Tensor) -> dict:
        """The keypoint scene head on each camera's current image (in [-1, 1] at
        ``image_size``; the head shifts them by up to ``image_shift_px``, labels along,
        while it trains)."""
        c = self.config
        imgs = self._camera_images(obs, c.image_size, shift=0)
        trains = self.training and not c.freeze_vision
        return self.scene_head(imgs, s, shift_px=c.image_shift_px if trains else 0)

    def _keypoint_labels(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """The recorded image points of the current step: (B, cameras, P, 3)."""
        c, out = self.config, []
        for key in c.image_keys:
            kkey = K.keypoints_key(K.camera_name(key))
            if kkey not in batch:
                raise KeyError(
                    f"policy.scene_head=keypoints learns from {kkey}, which the training "
                    "store does not record: collect the demos with robolearn-collect "
                    "--scene-state (it records observation.keypoints.<camera> beside the "
                    "scene state), or set policy.scene_head=pool")
            x = torch.as_tensor(batch[kkey]).to(self.device).float()
            out.append(x[:, -1] if x.ndim == 4 else x)
        labels = torch.stack(out, 1)
        if labels.shape[2] != self.scene_head.n_points:
            raise ValueError(
                f"the store's keypoints hold {labels.shape[2]} points per camera; the scene "
                f"head expects {self.scene_head.n_points} (one per object xyz of the "
                f"{c.scene_state_dim}-D scene state, then the end effector)")
        return labels

    def _camera_images(self, obs: Mapping[str, Any], size: int | None = None,
                       shift: int | None = None) -> list[torch.Tensor]:
        """Each camera's current image, (B, 3, S, S) in [-1, 1]: ``size`` = the image
        encoder's input size (``c.image_size`` unless pretrained), ``shift`` = the policy's
        random shift while training, unless given."""
        c, imgs = self.config, []
        size = size or self.vision.image_size
        shift = (c.image_shift_px if self.training else 0) if shift is None else shift
        for key in c.image_keys:
            im = torch.as_tensor(obs[key]).to(self.device)
            im = im[:, -1] if im.ndim == 5 else im
            # [0, 1] -> [-1, 1], SigLIP's input range
            imgs.append(prepare_images(self.normalizer, key, im, size, shift) * 2.0 - 1.0)
        return imgs

    def _warn_long_text(self, text: str) -> None:
        """Once per policy: an instruction is longer than the text slots, so it loses its
        end - often the words that say where to put the object."""
        self._warned_long_text = True
        log.warning("flow_vla: the instruction %r is longer than policy.max_text_tokens=%d "
                    "tokens and is cut at that length (its end is never seen, nor that of "
                    "any longer one). Raise policy.max_text_tokens to fit the longest "
                    "instruction in the data.",
                    text, self.config.max_text_tokens)

    def prefix_cache(self, emb: torch.Tensor, mask: torch.Tensor):
        """Run the LM over the prefix (bidirectional among valid tokens) -> its KV cache."""
        p = emb.shape[1]
        pos = (mask.long().cumsum(1) - 1).clamp_min(0)
        attn = attention_mask_4d(mask[:, None, :].expand(-1, p, -1),
                                 self.config.attn_implementation, emb.dtype)
        out = self.lm(inputs_embeds=emb, attention_mask=attn, position_ids=pos, use_cache=True)
        return out.cache

    # ---- suffix -------------------------------------------------------------------------
    def velocity(self, cache, prefix_mask: torch.Tensor, x_t: torch.Tensor,
                 t: torch.Tensor) -> torch.Tensor:
        """Velocity field v(x_t, t | prefix): x_t (B, H, max_A), t (B,) -> (B, H, max_A).

        Appends H tokens to ``cache``; the caller crops them off to reuse the prefix.
        """
        b, h, _ = x_t.shape
        a = self.action_in(x_t)
        te = sincos_time_embedding(t, a.shape[-1]).to(a.dtype)[:, None].expand(-1, h, -1)
        x = self.action_time_mlp(torch.cat([a, te], dim=-1))
        # every action token sees the valid prefix and all action tokens (π0's block mask)
        allowed = torch.cat([prefix_mask, prefix_mask.new_ones(b, h)], 1)[:, None].expand(-1, h, -1)
        pos = prefix_mask.long().sum(1, keepdim=True) + torch.arange(h, device=x.device)
        attn = attention_mask_4d(allowed, self.config.attn_implementation, x.dtype)
        out = self.expert(inputs_embeds=x, attention_mask=attn,
                          position_ids=pos, cache=cache, use_cache=True)
        return self.action_out(out.last_hidden_state)

    # ---- contract -------------------------------------------------------------------------
    def _padded_actions(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        a = self.normalizer.normalize(K.ACTION, batch[K.ACTION].float())
        a = F.pad(a, (0, c.max_action_dim - a.shape[-1]))
        dim_mask = batch.get(ACTION_DIM_MASK)
        if dim_mask is None:
            dim_mask = torch.arange(c.max_action_dim, device=a.device) < c.action_dim
            dim_mask = dim_mask[None].expand(a.shape[0], -1)
        dim_mask = dim_mask.to(a.device)
        # padded dims are exactly zero (as openpi pads), whatever the batch held there
        return a * dim_mask[:, None, :].to(a.dtype), dim_mask

    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        c = self.config
        if c.perception_only:  # cameras + state -> scene head only: no LM, no expert
            if c.scene_head == "keypoints":
                out = self._keypoint_scene(batch, self._current_state(batch))
                return self._keypoint_losses(batch, out)
            scene = self._scene_loss(batch, self.scene_estimate(batch))
            return {"loss": scene, "scene_loss": scene.detach()}
        actions, dim_mask = self._padded_actions(batch)  # (B, H, max_A), (B, max_A)
        b = actions.shape[0]
        # 1. flow time ~ Beta(1.5, 1) squashed into [time_min, 1]: mostly noisy times (π0)
        t = self._time_dist.sample((b,)).to(actions.device) * (1 - c.time_min) + c.time_min
        noise = torch.randn_like(actions)
        # 2. point on the straight path from actions (t=0) to noise (t=1), and its velocity
        tt = t[:, None, None]
        x_t = tt * noise + (1 - tt) * actions
        target = noise - actions
        # 3. predict the velocity from the prefix cache; loss on real steps and real dims
        aux = {} if self.scene_head is not None else None
        emb, pmask = self.embed_prefix(batch, aux)
        v = self.velocity(self.prefix_cache(emb, pmask), pmask, x_t, t)
        keep = dim_mask[:, None, :].float().expand_as(v)
        act_pad = batch.get(K.pad_key(K.ACTION))
        if act_pad is not None:
            keep = keep * (~act_pad.to(v.device))[:, :, None].float()
        loss = ((v - target) ** 2 * keep).sum() / keep.sum().clamp_min(1.0)
        if self.scene_head is None:
            return {"loss": loss}
        if "scene" not in aux:  # a frozen head, skipped: the token is teacher-forced
            return {"loss": loss, "flow_loss": loss.detach()}
        if "points" in aux and not c.freeze_vision:  # the keypoint head trains beside
            kp = self._keypoint_losses(batch, aux["points"])
            return {"loss": loss + c.scene_aux_weight * kp["loss"], "flow_loss": loss.detach(),
                    "scene_loss": kp["scene_loss"], "point_loss": kp["point_loss"]}
        scene = self._scene_loss(batch, aux["scene"])
        if c.freeze_vision:  # the frozen head's error on these batches: reported, not trained
            return {"loss": loss, "flow_loss": loss.detach(), "scene_loss": scene.detach()}
        return {"loss": loss + c.scene_aux_weight * scene, "flow_loss": loss.detach(),
                "scene_loss": scene.detach()}

    def _keypoint_losses(self, batch: Mapping[str, Any], out: dict) -> dict[str, torch.Tensor]:
        """The keypoint head's loss: its image points against the recorded ones, plus the
        lifted scene against the recorded scene state (smooth L1, normalised units: a
        held or occluded cube's large error does not swamp the rest)."""
        points = self.scene_head.point_loss(out, self._keypoint_labels(batch))
        lift = F.smooth_l1_loss(out["scene"], self._true_scene(batch), beta=0.1)
        return {"loss": points + lift, "point_loss": points.detach(),
                "scene_loss": lift.detach()}

    def scene_estimate(self, obs: Mapping[str, Any]) -> torch.Tensor:
        """The scene head's estimate of the object positions (B, scene_state_dim), in the
        head's normalised units (``scene_norm``), from the cameras and the arm state only."""
        if self.scene_head is None:
            raise ValueError("this flow_vla has no scene head (scene_aux_weight=0)")
        if self.config.scene_head == "keypoints":
            return self._keypoint_scene(obs, self._current_state(obs))["scene"]
        pool = self.vision.pool(self.vision(torch.cat(self._camera_images(obs))))
        return self._scene_head(pool, self._current_state(obs))

    @torch.no_grad()
    def val_metrics(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """With a scene head: ``scene_err_cm``, its mean error per object position (3-D,
        cm; the xyz triples of the scene state) on these frames: on held-out layouts, what
        the perception stage has learned, in units a grasp is judged in. The keypoint head
        adds ``point_err_px``, the median error of its image points in view (pixels)."""
        if self.scene_head is None:
            return {}
        out = {}
        if self.config.scene_head == "keypoints":  # + the image points' median error
            kp = self._keypoint_scene(batch, self._current_state(batch))
            est = kp["scene"]
            labels = self._keypoint_labels(batch)
            seen = labels[..., 2] > 0.5
            if bool(seen.any()):
                px = ((kp["points"]["uv"] - labels[..., :2]) * self.config.image_size).norm(dim=-1)
                out["point_err_px"] = float(px[seen].median())
        else:
            est = self.scene_estimate(batch)
        est = self.scene_norm.unnormalize(K.OBS_ENV_STATE, est)
        true = self._current(batch, K.OBS_ENV_STATE)
        n = true.shape[-1] // 3
        err = (est[:, :3 * n] - true[:, :3 * n]).reshape(-1, n, 3).norm(dim=-1)
        return {"scene_err_cm": float(err.mean()) * 100.0, **out}

    def _true_scene(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """The recorded scene state of the current step, normalised: (B, scene_state_dim)."""
        if K.OBS_ENV_STATE not in batch:
            raise KeyError(f"scene_aux_weight > 0 needs {K.OBS_ENV_STATE} in the batch: train "
                           "on a store collected with robolearn-collect --scene-state")
        return self.scene_norm.normalize(K.OBS_ENV_STATE, self._current(batch, K.OBS_ENV_STATE))

    def _scene_loss(self, batch: Mapping[str, Any], pred: torch.Tensor) -> torch.Tensor:
        """MSE of the scene state (normalised) predicted from the pooled cameras + state."""
        return F.mse_loss(pred, self._true_scene(batch))

    def _scheduler(self):
        from diffusers import FlowMatchEulerDiscreteScheduler

        sched = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)
        n = self.config.num_steps
        sched.set_timesteps(sigmas=[1.0 - i / n for i in range(n)], device=self.device)
        return sched

    @torch.no_grad()
    def predict_action_chunk(self, obs: Mapping[str, Any], noise: torch.Tensor | None = None,
                             use_kv_cache: bool | None = None) -> torch.Tensor:
        """Integrate the flow from noise to an action chunk: (B, H, action_dim), raw units.

        ``use_kv_cache=False`` recomputes the LM over the prefix at every Euler step
        (the baseline of the KV-cache benchmark; outputs are the same).
        """
        c = self.config
        obs = self.on_device(obs)
        use_cache = c.use_kv_cache if use_kv_cache is None else use_kv_cache
        emb, pmask = self.embed_prefix(obs)
        b, h = emb.shape[0], c.horizon
        x = noise.to(self.device) if noise is not None else c.noise_scale * torch.randn(
            b, h, c.max_action_dim, device=self.device)
        cache = self.prefix_cache(emb, pmask) if use_cache else None
        sched = self._scheduler()
        # Euler: x <- x + (t_next - t) * v(x, t), from t = 1 down to t = 0
        for ts in sched.timesteps:
            t = (ts / sched.config.num_train_timesteps).expand(b).to(x.device)
            if use_cache:
                v = self.velocity(cache, pmask, x, t)
                cache.crop(-h)  # drop the action tokens, keep the prefix KV for the next step
            else:
                v = self.velocity(self.prefix_cache(emb, pmask), pmask, x, t)
            x = sched.step(v, ts, x).prev_sample
        return self.normalizer.unnormalize(K.ACTION, x[..., : c.action_dim])
