"""SynDiff's time-conditioned diffusive discriminator (Ozbey et al. 2023, Sec. III-B;
DDGAN's large discriminator, Xiao et al. 2022).

D(x_t, t, x_{t+1}) scores whether x_t is a real or generated denoising of x_{t+1}: the two
images are stacked on channels, a 1x1 convolution opens to 2*ngf channels, downsampling
residual blocks (time embedding added after the first convolution, FIR [1,3,3,1]
downsampling) reach 4x4, a minibatch-standard-deviation channel (Karras et al. 2018) is
appended, and a 3x3 convolution, a spatial sum and a linear layer give one logit.

Example:
    >>> import torch
    >>> d = TimeDiscriminator(image_size=32, ngf=4, t_emb_dim=8)
    >>> d(torch.zeros(2, 1, 32, 32), torch.tensor([0, 1]), torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 1])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from medxlate.models.nets.fir import fir_down
from medxlate.models.nets.ncsnpp_blocks import SKIP_SCALE, conv, dense, timestep_embedding


class DownBlock(nn.Module):
    """lrelu -> conv3x3 (+ time) -> lrelu -> [FIR down] -> conv3x3, plus a 1x1 skip."""

    def __init__(self, in_ch: int, out_ch: int, t_emb_dim: int, downsample: bool) -> None:
        super().__init__()
        self.downsample = downsample
        self.conv1 = conv(in_ch, out_ch)
        self.conv2 = conv(out_ch, out_ch, scale=0.0)
        self.temb_proj = dense(t_emb_dim, out_ch)
        self.skip = nn.Conv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.leaky_relu(x, 0.2)) + self.temb_proj(temb)[:, :, None, None]
        h = F.leaky_relu(h, 0.2)
        if self.downsample:
            h, x = fir_down(h), fir_down(x)
        return (self.conv2(h) + self.skip(x)) * SKIP_SCALE


def minibatch_stddev(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    """Append the mean over features of the per-group standard deviation as one channel."""
    b, c, h, w = x.shape
    g = max(d for d in range(1, min(b, group) + 1) if b % d == 0)
    y = x.view(g, -1, c, h, w)
    std = torch.sqrt(y.var(dim=0, unbiased=False) + 1e-8).mean(dim=(1, 2, 3))  # (B/g,)
    std = std.view(-1, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, std], dim=1)


class TimeDiscriminator(nn.Module):
    """Diffusive discriminator for ``image_size`` images (256 in the paper: 6 downsamplings).

    Args:
        image_size: input side; must be 4 * 2**k.
        in_channels: channels of each of x_t and x_{t+1} (1).
        ngf: base width (64 in the paper); widths 2, 4, 8, 8, ... x ngf.
        t_emb_dim: time embedding width (256 in the paper).
    """

    def __init__(self, image_size: int = 256, in_channels: int = 1, ngf: int = 64,
                 t_emb_dim: int = 256) -> None:
        super().__init__()
        n_down = round(math.log2(image_size / 4))
        if n_down < 1 or 4 * 2 ** n_down != image_size:
            raise ValueError(f"image_size must be 4 * 2**k (k >= 1), got {image_size}")
        self.t_emb_dim = t_emb_dim
        self.time_mlp = nn.Sequential(dense(t_emb_dim, t_emb_dim), nn.LeakyReLU(0.2),
                                      dense(t_emb_dim, t_emb_dim))
        self.start = conv(2 * in_channels, 2 * ngf, 1)
        widths = [2 * ngf] + [ngf * min(2 ** (i + 2), 8) for i in range(n_down)]
        self.blocks = nn.ModuleList(
            DownBlock(widths[i], widths[i + 1], t_emb_dim, True) for i in range(n_down))
        self.final = conv(widths[-1] + 1, widths[-1])
        self.head = dense(widths[-1], 1)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, x_tp1: torch.Tensor) -> torch.Tensor:
        """x_t, x_tp1: (B, C, H, W); t: (B,) step indices. Returns logits (B, 1)."""
        temb = F.leaky_relu(self.time_mlp(timestep_embedding(t, self.t_emb_dim)), 0.2)
        h = self.start(torch.cat([x_t, x_tp1], dim=1))
        for block in self.blocks:
            h = block(h, temb)
        h = F.leaky_relu(self.final(minibatch_stddev(h)), 0.2)
        return self.head(h.sum(dim=(2, 3)))
