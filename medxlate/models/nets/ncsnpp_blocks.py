"""Building blocks of the NCSN++ generator with adaptive group norm (SynDiff, DDGAN).

Song et al. 2021 (NCSN++: BigGAN-style residual blocks, FIR resampling, skip rescale
1/sqrt(2)); Xiao et al. 2022 and Ozbey et al. 2023 (adaptive group norm driven by a latent
code z). Every block works in any memory format; the generator runs them channels-last.

Speed notes (CPU inference is the use case): the 1/sqrt(2) of the skip connections is folded
into the last convolution's weights, the 1x1 shortcut of an upsampling block runs before the
FIR upsampling (linear ops commute; the bias goes after, because zero-padded FIR
upsampling does not preserve constants at the border), and attention uses SDPA.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from medxlate.models.nets.fir import fir_blur_pad2, fir_down, fir_up

SKIP_SCALE = 1.0 / math.sqrt(2.0)


def variance_scaling_(weight: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """DDPM's init: uniform with variance ``scale / fan_avg`` (scale 0 -> 1e-10)."""
    scale = 1e-10 if scale == 0 else scale
    receptive = weight[0, 0].numel() if weight.dim() > 2 else 1
    fan_avg = (weight.shape[0] + weight.shape[1]) * receptive / 2
    bound = math.sqrt(3.0 * scale / fan_avg)
    with torch.no_grad():
        return weight.uniform_(-bound, bound)


def conv(in_ch: int, out_ch: int, kernel: int = 3, scale: float = 1.0) -> nn.Conv2d:
    """Zero-bias, variance-scaled convolution with 'same' padding."""
    layer = nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2)
    variance_scaling_(layer.weight, scale)
    nn.init.zeros_(layer.bias)
    return layer


def dense(in_dim: int, out_dim: int, scale: float = 1.0) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim)
    variance_scaling_(layer.weight, scale)
    nn.init.zeros_(layer.bias)
    return layer


def timestep_embedding(t: torch.Tensor, dim: int, max_positions: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding (Vaswani et al. 2017; DDPM): ``[sin(t w_i), cos(t w_i)]``,
    ``w_i = max_positions ** (-i / (dim/2 - 1))``; SynDiff feeds the integer step index t."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device)
                      * -(math.log(max_positions) / (half - 1)))
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


def num_groups(channels: int) -> int:
    return min(channels // 4, 32)


class AdaptiveGroupNorm(nn.Module):
    """``silu(gamma(z) * GroupNorm(x) + beta(z))``: group norm without its own affine, whose
    per-sample scale and shift come from the latent embedding (Eq. of AdaIN, Karras 2019)."""

    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        self.groups = num_groups(channels)
        self.style = dense(style_dim, 2 * channels)
        with torch.no_grad():
            self.style.bias[:channels] = 1.0

    def forward(self, x: torch.Tensor, zemb: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.style(zemb)[:, :, None, None].chunk(2, dim=1)
        if torch.is_grad_enabled():
            h = F.group_norm(x, self.groups, eps=1e-6)
            return F.silu(torch.addcmul(beta, h, gamma))
        if x.shape[0] == 1:  # one sample: the style is a plain per-channel affine (one pass)
            h = F.group_norm(x, self.groups, gamma.reshape(-1), beta.reshape(-1), eps=1e-6)
        else:
            h = F.group_norm(x, self.groups, eps=1e-6)
            if torch.compiler.is_compiling():  # dynamo cannot trace out= into an NHWC tensor
                h = torch.addcmul(beta, h, gamma)  # (and inductor fuses it anyway)
            else:
                h = torch.addcmul(beta, h, gamma, out=h)
        return F.silu(h, inplace=True)


class ResBlock(nn.Module):
    """BigGAN++ residual block with adaptive group norm, time bias and optional FIR
    up/downsampling (Song et al. 2021, Fig. 4; SynDiff's diffusive generator)."""

    def __init__(self, in_ch: int, out_ch: int | None, temb_dim: int, zemb_dim: int,
                 up: bool = False, down: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        out_ch = out_ch or in_ch
        self.up, self.down = up, down
        self.norm0 = AdaptiveGroupNorm(in_ch, zemb_dim)
        self.conv0 = conv(in_ch, out_ch)
        self.temb_proj = dense(temb_dim, out_ch)
        self.norm1 = AdaptiveGroupNorm(out_ch, zemb_dim)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv1 = conv(out_ch, out_ch, scale=0.0)
        self.skip = conv(in_ch, out_ch, 1) if (in_ch != out_ch or up or down) else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor, zemb: torch.Tensor) -> torch.Tensor:
        """``temb`` is the activated time embedding silu(temb), shared by all blocks."""
        h = self.norm0(x, zemb)
        if self.up:
            h = fir_up(h)
        elif self.down:
            h = fir_down(h)
            x = fir_down(x)
        bias = self.conv0.bias + self.temb_proj(temb)
        if h.shape[0] == 1 and not torch.is_grad_enabled():  # fused into the convolution
            h = F.conv2d(h, self.conv0.weight, bias[0], padding=1)
        else:
            h = F.conv2d(h, self.conv0.weight, padding=1)
            h = h + bias[:, :, None, None] if torch.is_grad_enabled() else \
                h.add_(bias[:, :, None, None])
        h = self.dropout(self.norm1(h, zemb))
        h = F.conv2d(h, self.conv1.weight * SKIP_SCALE, self.conv1.bias * SKIP_SCALE,
                     padding=1)
        if self.skip is None:
            skip = x
        elif self.up:
            skip = fir_up(F.conv2d(x, self.skip.weight)) + self.skip.bias[:, None, None]
        else:
            skip = self.skip(x)
        if torch.is_grad_enabled():
            return h + skip * SKIP_SCALE
        return h.add_(skip, alpha=SKIP_SCALE)


class AttnBlock(nn.Module):
    """Single-head self-attention over pixels with a residual, skip rescale 1/sqrt(2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(num_groups(channels), channels, eps=1e-6)
        self.q, self.k, self.v = (dense(channels, channels, 0.1) for _ in range(3))
        self.proj = dense(channels, channels, 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        q, k, v = (layer(tokens).unsqueeze(1) for layer in (self.q, self.k, self.v))
        a = F.scaled_dot_product_attention(q, k, v).squeeze(1)
        out = F.linear(a, self.proj.weight * SKIP_SCALE, self.proj.bias * SKIP_SCALE)
        out = out.transpose(1, 2).reshape(b, c, hh, ww)
        return out + x * SKIP_SCALE


class PyramidDown(nn.Module):
    """FIR 'conv then downsample' of the input pyramid (progressive_input="residual")."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = conv(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(fir_blur_pad2(x), self.conv.weight, self.conv.bias, stride=2)


class LatentMLP(nn.Module):
    """z -> pixel norm -> (1 + n_mlp) dense layers with SiLU (the style mapping network)."""

    def __init__(self, nz: int, zemb_dim: int, n_mlp: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [dense(nz, zemb_dim), nn.SiLU()]
        for _ in range(n_mlp):
            layers += [dense(zemb_dim, zemb_dim), nn.SiLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        return self.net(z)
