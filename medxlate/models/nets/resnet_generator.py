"""CycleGAN's ResNet generator (Johnson et al. 2016; Zhu et al. 2017, appendix 7.2).

Layout ``c7s1-ngf, d2ngf, d4ngf, R4ngf x n_blocks, u2ngf, ungf, c7s1-out`` with reflect
padding, instance norm and a tanh output. ``n_blocks`` is 9 for 256x256 images in the
paper and 6 for 128x128 (SynDiff's non-diffusive module uses 6).

Example:
    >>> import torch
    >>> g = ResnetGenerator(1, 1, ngf=8, n_blocks=2)
    >>> g(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 1, 32, 32])
"""

from __future__ import annotations

import torch
from torch import nn

from medxlate.models.nets.gan_common import conv_bias, init_gan_weights, make_norm


class ResnetBlock(nn.Module):
    """Two reflect-padded 3x3 convolutions with a residual connection (``R`` in the paper)."""

    def __init__(self, channels: int, norm: str = "instance", dropout: float = 0.0) -> None:
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(norm, channels), nn.ReLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
                   make_norm(norm, channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Image-to-image ResNet generator.

    Args:
        in_channels: input channels (e.g. 1, or 2k+1 for 2.5D context).
        out_channels: output channels.
        ngf: filters of the first layer (64 in the paper).
        n_blocks: residual blocks at the bottleneck (6 or 9 in the paper).
        norm: "instance" (default), "batch" or "none".
        n_down: stride-2 downsamplings (2 in the paper); H and W must be divisible by
            ``2**n_down``.
        dropout: dropout inside residual blocks (0 in CycleGAN).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, ngf: int = 64,
                 n_blocks: int = 9, norm: str = "instance", n_down: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if n_blocks < 0 or n_down < 0:
            raise ValueError("n_blocks and n_down must be non-negative")
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias),
            make_norm(norm, ngf), nn.ReLU(inplace=True),
        ]
        ch = ngf
        for _ in range(n_down):
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1, bias=bias),
                       make_norm(norm, ch * 2), nn.ReLU(inplace=True)]
            ch *= 2
        layers += [ResnetBlock(ch, norm, dropout) for _ in range(n_blocks)]
        for _ in range(n_down):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1,
                                          output_padding=1, bias=bias),
                       make_norm(norm, ch // 2), nn.ReLU(inplace=True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.multiple = 2 ** n_down
        init_gan_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, in_channels, H, W) to (B, out_channels, H, W) in [-1, 1]."""
        if x.shape[-1] % self.multiple or x.shape[-2] % self.multiple:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not a multiple of "
                             f"{self.multiple}")
        return self.model(x)
