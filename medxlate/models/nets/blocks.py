"""Building blocks of improved-diffusion-style U-Nets (Nichol & Dhariwal 2021; Dhariwal &
Nichol 2021): timestep embedding, residual blocks with scale-shift conditioning, multi-head
self-attention, resampling."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps ``t`` (B,) -> (B, dim)
    (Vaswani et al. 2017, Sec. 3.5; cos half first, as improved-diffusion)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32,
                                                           device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def group_norm(channels: int, max_groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= max_groups that divides ``channels``."""
    groups = max(g for g in range(1, max_groups + 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero a module's parameters: residual branches then start as the identity."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, then ``norm(h) * (1 + scale) + shift`` from the embedding
    (adaptive group norm, Dhariwal & Nichol 2021 Sec. 3), SiLU-dropout-conv, plus a skip."""

    def __init__(self, channels: int, emb_dim: int, out_channels: int | None = None,
                 dropout: float = 0.0):
        super().__init__()
        out = out_channels or channels
        self.in_layers = nn.Sequential(group_norm(channels), nn.SiLU(),
                                       nn.Conv2d(channels, out, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * out))
        self.out_norm = group_norm(out)
        self.out_layers = nn.Sequential(nn.SiLU(), nn.Dropout(dropout),
                                        zero_module(nn.Conv2d(out, out, 3, padding=1)))
        self.skip = nn.Identity() if out == channels else nn.Conv2d(channels, out, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        scale, shift = self.emb_layers(emb).to(h.dtype)[..., None, None].chunk(2, dim=1)
        h = self.out_norm(h) * (1 + scale) + shift
        return self.skip(x) + self.out_layers(h)


class AttentionBlock(nn.Module):
    """Multi-head self-attention over the spatial positions, residual, zero-initialised out."""

    def __init__(self, channels: int, head_channels: int = 64):
        super().__init__()
        self.heads = max(1, channels // head_channels)
        self.norm = group_norm(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = zero_module(nn.Conv1d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, *spatial = x.shape
        qkv = self.qkv(self.norm(x).reshape(b, c, -1))                 # (B, 3C, N)
        q, k, v = qkv.reshape(b, 3, self.heads, c // self.heads, -1).transpose(-1, -2).unbind(1)
        h = F.scaled_dot_product_attention(q, k, v)                     # (B, heads, N, d)
        h = h.transpose(-1, -2).reshape(b, c, -1)
        return x + self.proj(h).reshape(b, c, *spatial)


class Downsample(nn.Module):
    """Strided 3x3 convolution halving H and W."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour x2 then a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
