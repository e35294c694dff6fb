"""Conditional 1-D U-Net over action chunks, after Chi et al.'s Diffusion Policy.

Input (B, H, A) noisy actions, a diffusion step per sample and a global condition
(B, C) from the observation encoder; output (B, H, A).  Every residual block is
FiLM-modulated by [step embedding, condition].
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


class SinusoidalEmbedding(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:  # (B,) -> (B, dim)
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / max(1, half - 1))
        args = t.float()[:, None] * freqs[None]
        return torch.cat([args.sin(), args.cos()], dim=-1)


def conv_block(c_in: int, c_out: int, k: int, groups: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(c_in, c_out, k, padding=k // 2), nn.GroupNorm(groups, c_out),
                         nn.Mish())


class FiLMResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, cond_dim: int, k: int, groups: int):
        super().__init__()
        self.block1, self.block2 = conv_block(c_in, c_out, k, groups), conv_block(c_out, c_out, k, groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.block1(x)
        scale, bias = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        h = self.block2(h * (1 + scale) + bias)
        return h + self.skip(x)


class ConditionalUnet1D(nn.Module):
    def __init__(self, action_dim: int, cond_dim: int, down_dims: Sequence[int] = (128, 256, 512),
                 kernel_size: int = 5, n_groups: int = 8, time_embed_dim: int = 128):
        super().__init__()
        self.time_embed = nn.Sequential(SinusoidalEmbedding(time_embed_dim),
                                        nn.Linear(time_embed_dim, 4 * time_embed_dim), nn.Mish(),
                                        nn.Linear(4 * time_embed_dim, time_embed_dim))
        cdim = time_embed_dim + cond_dim
        dims = [action_dim] + list(down_dims)
        self.down = nn.ModuleList()
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == len(down_dims) - 1
            self.down.append(nn.ModuleList([
                FiLMResBlock(a, b, cdim, kernel_size, n_groups),
                FiLMResBlock(b, b, cdim, kernel_size, n_groups),
                nn.Conv1d(b, b, 3, stride=2, padding=1) if not last else nn.Identity()]))
        mid = down_dims[-1]
        self.mid = nn.ModuleList([FiLMResBlock(mid, mid, cdim, kernel_size, n_groups)
                                  for _ in range(2)])
        self.up = nn.ModuleList()
        rev = list(down_dims)[::-1]
        for a, b in zip(rev[:-1], rev[1:]):
            self.up.append(nn.ModuleList([
                FiLMResBlock(2 * a, b, cdim, kernel_size, n_groups),
                FiLMResBlock(b, b, cdim, kernel_size, n_groups),
                nn.ConvTranspose1d(b, b, 4, stride=2, padding=1)]))
        self.final = nn.Sequential(conv_block(down_dims[0], down_dims[0], kernel_size, n_groups),
                                   nn.Conv1d(down_dims[0], action_dim, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x: (B, H, A), t: (B,) diffusion steps, cond: (B, C) -> (B, H, A)."""
        c = torch.cat([self.time_embed(t), cond], dim=-1)
        h, skips = x.transpose(1, 2), []
        # 1. contracting path: two FiLM blocks per level, keep the output for the skip, downsample
        for b1, b2, down in self.down:
            h = b2(b1(h, c), c)
            skips.append(h)
            h = down(h)
        for blk in self.mid:
            h = blk(h, c)
        # 2. expanding path: concatenate the skip of the same resolution, upsample
        for b1, b2, up in self.up:
            h = b2(b1(torch.cat([h, skips.pop()], dim=1), c), c)
            h = up(h)
        return self.final(h).transpose(1, 2)
