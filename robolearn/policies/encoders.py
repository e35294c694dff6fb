"""Observation encoders shared by the policies (and by later pretraining, e.g. inverse dynamics).

Shape contract of an image encoder (any ``nn.Module`` with these members):

* ``forward(images)``: float (B, 3, S, S), already normalised -> tokens (B, n_tokens, token_dim)
* ``pool(tokens)``: (B, n_tokens, token_dim) -> (B, out_dim), one vector per image
* ``token_dim``, ``out_dim``, ``n_tokens``: ints (``n_tokens`` for the configured size S)

:class:`ObservationEncoder` turns a raw observation window into one feature vector per
step, ``(B, n_obs, feature_dim)``: every camera through one shared image encoder (plus a
learned per-camera embedding), concatenated with the normalised state.  Policies inject
the image encoder, so swapping in a pretrained one is a constructor argument.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from robolearn import keys as K


def prepare_images(normalizer, key: str, images: torch.Tensor, size: int,
                   shift_px: int = 0) -> torch.Tensor:
    """uint8 (..., 3, H, W) -> normalised float (..., 3, size, size).

    ``shift_px > 0`` (training only) translates each image by a random whole-image shift
    of up to ``shift_px`` pixels with border padding (DrQ's random shift, the augmentation
    Diffusion Policy's random crop approximates): cheap, and it stops small image datasets
    from being memorised pixel by pixel.
    """
    x = normalizer.normalize(key, images)
    lead = x.shape[:-3]
    x = x.reshape(-1, *x.shape[-3:])
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if shift_px > 0:
        x = random_shift(x, shift_px)
    return x.reshape(*lead, 3, size, size)


def random_shift(x: torch.Tensor, shift_px: int,
                 shift: torch.Tensor | None = None) -> torch.Tensor:
    """Translate each image of (N, C, S, S) by up to ``shift_px`` pixels (border padding).
    ``shift``: (N, 2) whole pixels (x, y) to use instead of random ones; the image is
    sampled at ``position + shift``, so its content moves by ``-shift``."""
    n, _, h, w = x.shape
    if shift is None:
        shift = torch.randint(-shift_px, shift_px + 1, (n, 2), device=x.device)
    shift = shift.to(x.dtype)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = 2.0 * shift[:, 0] / w
    theta[:, 1, 2] = 2.0 * shift[:, 1] / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="border", align_corners=False)


class SpatialSoftmax(nn.Module):
    """Expected 2-D keypoint of each feature channel (Levine et al.; used by Diffusion Policy)."""

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:  # (B, C, h, w) -> (B, 2C)
        b, c, h, w = fmap.shape
        attn = fmap.flatten(2).softmax(-1)  # (B, C, h*w)
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=fmap.device),
                                torch.linspace(-1, 1, w, device=fmap.device), indexing="ij")
        grid = torch.stack([xs.flatten(), ys.flatten()], -1).to(fmap.dtype)  # (h*w, 2)
        return (attn @ grid).flatten(1)


class ConvImageEncoder(nn.Module):
    """A small strided CNN (GroupNorm + SiLU); tokens are the cells of its last feature map
    (token_dim = last channel count).  ``pool`` is a spatial softmax over the map (one 2-D
    keypoint per channel) followed by a linear layer to ``out_dim``.
    """

    def __init__(self, image_size: int = 96, channels: Sequence[int] = (32, 64, 128),
                 out_dim: int = 128):
        super().__init__()
        layers, c_in = [], 3
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.GroupNorm(min(8, c), c),
                       nn.SiLU()]
            c_in = c
        self.net = nn.Sequential(*layers)
        self.keypoints = SpatialSoftmax()
        self.pool_proj = nn.Linear(2 * c_in, out_dim)
        side = image_size
        for _ in channels:
            side = (side + 1) // 2
        self.image_size, self.token_dim, self.out_dim = image_size, c_in, out_dim
        self.n_tokens, self._side = side * side, side

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.feature_map(images).flatten(2).transpose(1, 2)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        b, n, d = tokens.shape
        fmap = tokens.transpose(1, 2).reshape(b, d, self._side, self._side)
        return self.pool_proj(self.keypoints(fmap))


def mlp_state_encoder(state_dim: int, out_dim: int, hidden: int = 256) -> nn.Sequential:
    """The learned state encoder: normalised state -> ``out_dim`` features (2 hidden layers)."""
    return nn.Sequential(nn.Linear(state_dim, hidden), nn.LayerNorm(hidden), nn.Mish(),
                         nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.Mish(),
                         nn.Linear(hidden, out_dim))


class ObservationEncoder(nn.Module):
    """Raw observation window -> (B, n_obs, feature_dim) (images pooled per camera + state).

    ``state_dim_out > 0`` passes the normalised state through a learned MLP
    (:func:`mlp_state_encoder`) to that many features; 0 uses the normalised state as it is.
    """

    def __init__(self, normalizer, image_keys: Sequence[str], state_dim: int, image_size: int,
                 image_encoder: nn.Module | None = None, image_dim: int = 128,
                 shift_px: int = 0, state_dim_out: int = 0):
        super().__init__()
        self.shift_px = shift_px
        self.normalizer, self.image_keys = normalizer, list(image_keys)
        self.image_size, self.state_dim = image_size, state_dim
        self.image_encoder = None
        if self.image_keys:
            self.image_encoder = image_encoder or ConvImageEncoder(image_size, out_dim=image_dim)
            self.camera_embed = nn.Parameter(
                torch.zeros(len(self.image_keys), self.image_encoder.out_dim))
        n_img = self.image_encoder.out_dim * len(self.image_keys) if self.image_keys else 0
        self.state_encoder = (mlp_state_encoder(state_dim, state_dim_out) if state_dim_out > 0
                              else None)
        self.feature_dim = n_img + (state_dim_out if state_dim_out > 0 else state_dim)

    def forward(self, obs: Mapping[str, Any], prefix: str = "") -> torch.Tensor:
        """``prefix``: read the window stored under ``prefix + key`` (``next.`` for s_{t+k})."""
        if prefix:
            obs = {k[len(prefix):]: v for k, v in obs.items() if k.startswith(prefix)}
        state = self.normalizer.normalize(K.OBS_STATE, obs[K.OBS_STATE].float())  # (B, T, D)
        if self.state_encoder is not None:
            state = self.state_encoder(state)
        feats = []
        for i, key in enumerate(self.image_keys):
            img = prepare_images(self.normalizer, key, obs[key], self.image_size,
                                 self.shift_px if self.training else 0)  # (B,T,3,S,S)
            b, t = img.shape[:2]
            f = self.image_encoder.pool(self.image_encoder(img.flatten(0, 1)))
            feats.append(f.view(b, t, -1) + self.camera_embed[i])
        return torch.cat(feats + [state], dim=-1)


class InstructionEncoder(nn.Module):
    """Instruction text -> (B, dim) from its UTF-8 bytes: no download, any language (flow_vla
    reads text with its language model instead).  Missing instructions encode as the empty
    string.

    * ``bag``: bytes embedded and mean-pooled - a bag of characters, enough to tell short
      skill instructions apart, but one colour word is a few percent of a long instruction;
    * ``conv``: a width-5 convolution over the embedded bytes, max-pooled over positions -
      word-like detectors whose response does not shrink as the instruction grows.
    """

    KINDS = ("bag", "conv")

    def __init__(self, dim: int, max_tokens: int = 48, kind: str = "bag"):
        super().__init__()
        from robolearn.policies.tokenizer import ByteTokenizer

        if kind not in self.KINDS:
            raise ValueError(f"lang_encoder must be one of {self.KINDS}, got {kind!r}")
        self.dim, self.max_tokens, self.kind = dim, max_tokens, kind
        self.tokenizer = ByteTokenizer()
        self.embed = nn.Embedding(ByteTokenizer.vocab_size, dim)
        if kind == "conv":
            self.conv = nn.Conv1d(dim, dim, kernel_size=5, padding=2)

    def forward(self, texts, batch_size: int, device) -> torch.Tensor:
        ids, mask = self.tokenizer(list(texts) if texts is not None else [""] * batch_size,
                                   self.max_tokens)
        ids, mask = ids.to(device), mask.to(device).float()
        e = self.embed(ids)
        if self.kind == "bag":
            return (e * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)
        h = F.gelu(self.conv((e * mask[..., None]).transpose(1, 2))).transpose(1, 2)
        return h.masked_fill(mask[..., None] == 0, float("-inf")).amax(1)


def instruction_encoder(config) -> InstructionEncoder | None:
    """The instruction embedding of a config with ``lang_dim`` (0 = unconditioned)."""
    dim = int(getattr(config, "lang_dim", 0))
    if dim <= 0:
        return None
    return InstructionEncoder(dim, config.max_text_tokens, getattr(config, "lang_encoder", "bag"))


def condition_features(obs_encoder: "ObservationEncoder", instruction: nn.Module | None,
                       obs: Mapping[str, Any], prefix: str = "") -> torch.Tensor:
    """(B, n_obs * F [+ lang_dim]): the flattened observation window and, when the policy
    is language-conditioned, the instruction embedding (``prefix``: see ObservationEncoder;
    with ``next.`` the instruction is ``next.language`` where the batch has it)."""
    z = obs_encoder(obs, prefix).flatten(1)
    if instruction is None:
        return z
    # s_{t+k} is valued under next.language when the batch has it (a chained skill's)
    text = obs.get(prefix + K.LANGUAGE, obs.get(K.LANGUAGE)) if prefix else obs.get(K.LANGUAGE)
    return torch.cat([z, instruction(text, z.shape[0], z.device)], -1)


def conv_observation_encoder(config, normalizer, image_encoder: nn.Module | None = None
                             ) -> ObservationEncoder:
    """The observation encoder of the conv-based policies (bc, diffusion, iql, pretrain):
    ``config.image_channels`` / ``image_dim`` conv encoder unless one is injected, random
    shifts of ``config.image_shift_px`` while training, a learned state MLP when
    ``config.state_encoder_dim > 0``.  Equal configs give equal encoders,
    which is what lets ``encoder_init`` move a pretrained one between them."""
    c = config
    if image_encoder is None and c.image_keys:
        image_encoder = ConvImageEncoder(c.image_size, c.image_channels, c.image_dim)
    return ObservationEncoder(normalizer, c.image_keys, c.state_dim, c.image_size,
                              image_encoder, shift_px=c.image_shift_px,
                              state_dim_out=c.state_encoder_dim)


class SiglipImageEncoder(nn.Module):
    """A SigLIP vision transformer (``transformers``) behind the image-encoder contract.

    Input (B, 3, S, S) scaled to [-1, 1] (SigLIP's range); tokens are the patch
    embeddings (B, (S/patch)^2, hidden); ``pool`` averages them.  Built from a small
    config with random init, or loaded from a local folder with SigLIP weights.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        cfg = model.config
        self.image_size, self.patch_size = int(cfg.image_size), int(cfg.patch_size)
        self.token_dim = self.out_dim = int(cfg.hidden_size)
        self.n_tokens = (self.image_size // self.patch_size) ** 2

    @classmethod
    def from_config(cls, image_size: int, patch_size: int, width: int, layers: int, heads: int,
                    mlp: int, attn_implementation: str = "sdpa") -> "SiglipImageEncoder":
        from transformers import SiglipVisionConfig, SiglipVisionModel

        cfg = SiglipVisionConfig(hidden_size=width, intermediate_size=mlp, num_hidden_layers=layers,
                                 num_attention_heads=heads, image_size=image_size,
                                 patch_size=patch_size, vision_use_head=False)
        cfg._attn_implementation = attn_implementation
        return cls(SiglipVisionModel(cfg))

    @classmethod
    def from_pretrained(cls, path: str) -> "SiglipImageEncoder":
        from transformers import SiglipVisionModel

        return cls(SiglipVisionModel.from_pretrained(path, dtype=torch.float32))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=images).last_hidden_state

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.mean(dim=1)


class EfficientNetImageEncoder(nn.Module):
    """EfficientNet-Lite0 (ImageNet-pretrained or random) behind the image-encoder contract.

    Input (B, 3, S, S) in [-1, 1] (Lite models' (x - 127) / 128 range); tokens are the
    cells of the last feature map (1280 channels, stride 32: 3 x 3 at 96 px); ``pool``
    averages them.
    """

    def __init__(self, image_size: int, pretrained_path: str = ""):
        super().__init__()
        from robolearn.policies.pretrained import efficientnet_lite0

        self.model = efficientnet_lite0(pretrained_path)
        side = -(-image_size // 32)
        self.image_size, self.token_dim, self.out_dim = image_size, 1280, 1280
        self.n_tokens = side * side

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.extract_features(images).flatten(2).transpose(1, 2)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.mean(dim=1)
