"""The pix2pix U-Net generator (Isola et al. 2017, section 3.2.1 and appendix 6.1.1).

Encoder ``C64-C128-C256-C512-C512-C512-C512-C512`` (4x4 stride-2 convolutions, LeakyReLU
0.2, no norm on the first and the innermost layer), decoder of 4x4 stride-2 transposed
convolutions with ReLU, each output concatenated with the mirrored encoder feature map (the
skip connections), and a tanh output. ``n_downs = 8`` is the paper's U-Net-256; smaller
slices use fewer levels (H and W must be divisible by ``2**n_downs``). The first
``n_dropout`` decoder layers apply 50% dropout (``CD`` layers in the paper); the paper keeps
dropout on at test time as the generator's noise source, which :func:`dropout_noise`
enables with an explicit ``torch.Generator`` so that sampling is reproducible.

Example:
    >>> import torch
    >>> g = UnetGenerator(3, 1, ngf=4, n_downs=5)
    >>> g(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 1, 64, 64])
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from medxlate.diffusion import noise as rng
from medxlate.models.nets.gan_common import conv_bias, init_gan_weights, make_norm


class SeededDropout(nn.Module):
    """Dropout that can stay on in eval mode and draw its masks from a given generator."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p
        self.sampling = False
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p <= 0 or not (self.training or self.sampling):
            return x
        if self.generator is None:
            return F.dropout(x, self.p, training=True)
        keep = rng.rand(x.shape, self.generator, device=x.device)
        keep = (keep >= self.p).to(x.dtype)
        return x * keep / (1.0 - self.p)


@contextlib.contextmanager
def dropout_noise(net: nn.Module, generator: torch.Generator | None) -> Iterator[None]:
    """Keep the SeededDropout layers of ``net`` on (paper's test-time noise) inside the block."""
    layers = [m for m in net.modules() if isinstance(m, SeededDropout)]
    for m in layers:
        m.sampling, m.generator = True, generator
    try:
        yield
    finally:
        for m in layers:
            m.sampling, m.generator = False, None


def _channels(level: int, ngf: int) -> int:
    return ngf * min(2 ** level, 8)


class UnetGenerator(nn.Module):
    """U-Net with skip connections between mirrored encoder and decoder levels.

    Args:
        in_channels: input channels (1, or 2k+1 with 2.5D context).
        out_channels: output channels.
        ngf: filters of the first encoder layer (64 in the paper).
        n_downs: stride-2 levels (8 for 256x256, >= 2).
        norm: "batch" (paper), "instance" or "none".
        dropout: dropout rate of the ``CD`` decoder layers (0.5 in the paper).
        n_dropout: how many of the first decoder layers have dropout (3 in the paper).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, ngf: int = 64,
                 n_downs: int = 8, norm: str = "batch", dropout: float = 0.5,
                 n_dropout: int = 3) -> None:
        super().__init__()
        if n_downs < 2:
            raise ValueError(f"n_downs must be >= 2, got {n_downs}")
        bias = conv_bias(norm)
        self.multiple = 2 ** n_downs
        self.down = nn.ModuleList()
        for i in range(n_downs):
            cin = in_channels if i == 0 else _channels(i - 1, ngf)
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(cin, _channels(i, ngf), 4, stride=2, padding=1,
                                    bias=bias))
            if 0 < i < n_downs - 1:
                layers.append(make_norm(norm, _channels(i, ngf)))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for k, i in enumerate(range(n_downs - 1, 0, -1)):
            cin = _channels(i, ngf) * (1 if i == n_downs - 1 else 2)
            cout = _channels(i - 1, ngf)
            layers = [nn.ReLU(), nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=bias),
                      make_norm(norm, cout)]
            if k < n_dropout and dropout > 0:
                layers.append(SeededDropout(dropout))
            self.up.append(nn.Sequential(*layers))
        self.out = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(2 * ngf, out_channels, 4, stride=2, padding=1),
            nn.Tanh())
        init_gan_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, in_channels, H, W) to (B, out_channels, H, W) in [-1, 1]."""
        if x.shape[-1] % self.multiple or x.shape[-2] % self.multiple:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not a multiple of "
                             f"{self.multiple}")
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the innermost feature map feeds the decoder directly
        for layer in self.up:
            x = torch.cat([layer(x), skips.pop()], dim=1)
        return self.out(x)
