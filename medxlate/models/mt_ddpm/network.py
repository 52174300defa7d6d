"""The MT-DDPM denoiser: a symmetric encoder-decoder of convolution + Swin-transformer
sections (Pan et al. 2023, "2D medical image synthesis using transformer-based denoising
diffusion probabilistic model", Phys. Med. Biol. 68 105004, Sec. 2 and Fig. 2).

Every section: a timestep-expanding layer (an MLP re-embedding the shared sinusoidal
embedding of t to the section's width) and an early 3x3 convolution, summed; three residual
convolution structures; one Swin-transformer block (W-MSA then SW-MSA). Encoder sections are
joined by strided-convolution downsampling, decoder sections by nearest upsampling + conv,
and each decoder section takes its mirrored encoder section's output as a skip connection.
The head outputs 2C channels: epsilon and the variance coefficient v (Eq. 23 of the paper).
"""

from __future__ import annotations

import torch
from torch import nn

from medxlate.models.nets.blocks import Downsample, Upsample, group_norm, timestep_embedding
from medxlate.models.nets.swin import SwinPair


class ResidualConv(nn.Module):
    """GroupNorm-SiLU-conv3x3 twice, plus the input (one "residual convolution structure")."""

    def __init__(self, channels: int, dropout: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(
            group_norm(channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
            group_norm(channels), nn.SiLU(), nn.Dropout(dropout),
            nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Section(nn.Module):
    """One MT-DDPM section at a fixed resolution (see the module docstring)."""

    def __init__(self, in_channels: int, channels: int, time_dim: int, heads: int, window: int,
                 size: int, res_blocks: int = 3, dropout: float = 0.0, mlp_ratio: float = 4.0):
        super().__init__()
        self.time = nn.Sequential(nn.Linear(time_dim, channels), nn.SiLU(),
                                  nn.Linear(channels, channels))
        self.early = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.convs = nn.Sequential(*[ResidualConv(channels, dropout) for _ in range(res_blocks)])
        self.swin = SwinPair(channels, heads, window, size, mlp_ratio)

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        h = self.early(x) + self.time(t_emb).to(x.dtype)[..., None, None]
        return self.swin(self.convs(h))


class MTDDPMNet(nn.Module):
    """Swin-transformer U-Net denoiser.

    Args:
        in_channels: noisy image channels + source channels (0 for unconditional).
        out_channels: 2 x image channels (epsilon, then the variance coefficient).
        size: training slice size (square); the windows are clamped to each section's map.
        channels: width of the first section. channel_mult: width multipliers per level
            (len = number of resolutions; the last level is the bottleneck).
        head_channels: channels per attention head. window: l of the l x l windows.
        res_blocks: residual convolution structures per section (3 in the paper).
        time_dim: width of the shared sinusoidal timestep embedding.
    """

    def __init__(self, in_channels: int, out_channels: int, size: int, channels: int = 64,
                 channel_mult: tuple[int, ...] = (1, 2, 4, 8), head_channels: int = 32,
                 window: int = 8, res_blocks: int = 3, time_dim: int | None = None,
                 dropout: float = 0.0, mlp_ratio: float = 4.0):
        super().__init__()
        widths = [channels * m for m in channel_mult]
        levels = len(widths)
        if size % (2 ** (levels - 1)):
            raise ValueError(f"slice size {size} is not divisible by 2^{levels - 1}")
        self.time_dim = time_dim or channels
        sizes = [size // 2 ** i for i in range(levels)]

        def section(c_in: int, c: int, level: int) -> Section:
            return Section(c_in, c, self.time_dim, max(1, c // head_channels), window,
                           sizes[level], res_blocks, dropout, mlp_ratio)

        self.encoder = nn.ModuleList()
        self.down = nn.ModuleList()
        c_prev = in_channels
        for level, c in enumerate(widths):
            self.encoder.append(section(c_prev, c, level))
            if level < levels - 1:
                self.down.append(Downsample(c))
            c_prev = c
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for level in reversed(range(levels - 1)):
            self.up.append(Upsample(widths[level + 1]))
            self.decoder.append(section(widths[level + 1] + widths[level], widths[level], level))
        self.head = nn.Sequential(group_norm(widths[0]), nn.SiLU(),
                                  nn.Conv2d(widths[0], out_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (B, C, H, W) noisy image, ``t`` (B,) timesteps, ``cond`` (B, S, H, W) or None."""
        h = x if cond is None else torch.cat([x, cond.to(x.dtype)], dim=1)
        t_emb = timestep_embedding(t, self.time_dim)
        skips = []
        for level, sec in enumerate(self.encoder):
            h = sec(h, t_emb)
            if level < len(self.down):
                skips.append(h)
                h = self.down[level](h)
        for up, sec in zip(self.up, self.decoder):
            h = sec(torch.cat([up(h), skips.pop()], dim=1), t_emb)
        return self.head(h)
