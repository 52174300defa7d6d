"""The PatchGAN discriminator of pix2pix/CycleGAN (Isola et al. 2017, section 3.2.2).

With ``n_layers=3`` the layout is ``C64-C128-C256-C512`` (4x4 convolutions, the first
without norm, the last of stride 1) followed by a 1-channel 4x4 convolution: every output
logit sees a 70x70 patch of the input. The output is a map of raw logits (no sigmoid), so
it can feed either BCE-with-logits (pix2pix) or least squares (LSGAN, CycleGAN).

Example:
    >>> import torch
    >>> d = PatchGAN(2, ndf=8)
    >>> d(torch.zeros(1, 2, 256, 256)).shape
    torch.Size([1, 1, 30, 30])
    >>> receptive_field(3)
    70
"""

from __future__ import annotations

import torch
from torch import nn

from medxlate.models.nets.gan_common import conv_bias, init_gan_weights, make_norm


def receptive_field(n_layers: int) -> int:
    """Side in pixels of the input patch one PatchGAN logit sees."""
    # n_layers stride-2 convs, then one stride-1 conv with norm, then the stride-1 head,
    # all 4x4: walk back from one output pixel.
    rf = 1
    for stride in [1, 1] + [2] * n_layers:
        rf = (rf - 1) * stride + 4
    return rf


class PatchGAN(nn.Module):
    """N-layer PatchGAN discriminator.

    Args:
        in_channels: input channels (source + target channels for a conditional D).
        ndf: filters of the first layer (64 in the paper).
        n_layers: stride-2 layers (>= 1); 3 gives the 70x70 PatchGAN, 1 a 16x16 one.
        norm: "instance" (CycleGAN), "batch" (pix2pix) or "none".
    """

    def __init__(self, in_channels: int = 1, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance") -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        bias = conv_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1),
                                   nn.LeakyReLU(0.2, inplace=True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=bias),
                       make_norm(norm, ndf * mult), nn.LeakyReLU(0.2, inplace=True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=bias),
                   make_norm(norm, ndf * mult), nn.LeakyReLU(0.2, inplace=True),
                   nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)
        init_gan_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logit map (B, 1, h, w) for input (B, in_channels, H, W)."""
        return self.model(x)
