"""MS-SPADE: switchable SPADE that turns a source latent into a target-like latent.

Architecture (Kim & Park, WACV 2024, Sec. 3.2 and its architecture table):

    In:  C7 -> IN -> ReLU                               (c0 = 128 channels)
    2 x ResBlock: (C3 -> ReLU -> IN) x 2 + skip         (c1 = 256)
    4 x SPADEBlock: C3 -> ReLU -> MS-SPADE, C3 -> ReLU -> MS-SPADE  (256, 256, 256, 128)
    Out: C7 to the latent channels

Each MS-SPADE normalisation is the paper's Eq. 1,

    x = gamma_tar(h) * (h - mu_c(h)) / sigma_c(h) + beta_tar(h),

with instance statistics (mu_c, sigma_c per sample and channel) and one (gamma, beta) head per
target modality; every sample of a batch uses the head of its own target index.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn


def _conv(cin: int, cout: int, k: int) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, k, padding=k // 2)


class MSSPADE(nn.Module):
    """One MS-SPADE normalisation (Eq. 1) with ``n_targets`` (gamma, beta) heads.

    Args:
        channels: channels of h.
        n_targets: number of target modalities (heads).
        hidden: width of each head's shared 3x3x3 convolution.
        eps: added to the instance variance.
    """

    def __init__(self, channels: int, n_targets: int, hidden: int = 64, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.shared = nn.ModuleList(nn.Sequential(_conv(channels, hidden, 3), nn.ReLU())
                                    for _ in range(n_targets))
        self.gamma = nn.ModuleList(_conv(hidden, channels, 3) for _ in range(n_targets))
        self.beta = nn.ModuleList(_conv(hidden, channels, 3) for _ in range(n_targets))
        for conv in self.gamma:   # start as the identity scale: gamma(h) ~ 1
            nn.init.zeros_(conv.weight)
            nn.init.ones_(conv.bias)

    @property
    def n_targets(self) -> int:
        return len(self.gamma)

    def forward(self, h: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``h`` (B, C, D, H, W); ``target`` (B,) long indices into the heads."""
        dims = tuple(range(2, h.ndim))
        mu = h.mean(dim=dims, keepdim=True)
        var = h.var(dim=dims, keepdim=True, unbiased=False)
        normalised = (h - mu) / torch.sqrt(var + self.eps)
        out = torch.empty_like(h)
        for k in torch.unique(target).tolist():
            rows = (target == k).nonzero(as_tuple=True)[0]
            a = self.shared[k](h[rows])
            out[rows] = self.gamma[k](a) * normalised[rows] + self.beta[k](a)
        return out


class ResBlock(nn.Module):
    """(C3 -> ReLU -> IN) twice, plus a (1x1x1 when the width changes) skip."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(_conv(cin, cout, 3), nn.ReLU(), nn.InstanceNorm3d(cout),
                                  _conv(cout, cout, 3), nn.ReLU(), nn.InstanceNorm3d(cout))
        self.skip = nn.Identity() if cin == cout else nn.Conv3d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class SPADEBlock(nn.Module):
    """C3 -> ReLU -> MS-SPADE, C3 -> ReLU -> MS-SPADE."""

    def __init__(self, cin: int, cout: int, n_targets: int, hidden: int):
        super().__init__()
        self.conv1, self.norm1 = _conv(cin, cout, 3), MSSPADE(cout, n_targets, hidden)
        self.conv2, self.norm2 = _conv(cout, cout, 3), MSSPADE(cout, n_targets, hidden)

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = self.norm1(torch.relu(self.conv1(x)), target)
        return self.norm2(torch.relu(self.conv2(x)), target)


class SPADENet(nn.Module):
    """z_src (B, L, d, h, w) and target indices (B,) -> z_src^tar (B, L, d, h, w).

    Args:
        latent_channels: L, the autoencoder's embedding dimension.
        n_targets: number of target modalities.
        channels: widths (in, res, spade1..spade4): the paper's (128, 256, 256, 256, 256, 128).
        hidden: width of the MS-SPADE heads.
    """

    def __init__(self, latent_channels: int, n_targets: int,
                 channels: Sequence[int] = (128, 256, 256, 256, 256, 128), hidden: int = 64):
        super().__init__()
        c_in, c_res, *c_spade = (int(c) for c in channels)
        if len(c_spade) != 4:
            raise ValueError(f"spade_channels needs 6 widths (in, res, 4 SPADE blocks), "
                             f"got {list(channels)}")
        self.n_targets = n_targets
        self.head = nn.Sequential(_conv(latent_channels, c_in, 7), nn.InstanceNorm3d(c_in),
                                  nn.ReLU())
        self.res = nn.Sequential(ResBlock(c_in, c_res), ResBlock(c_res, c_res))
        widths = [c_res, *c_spade]
        self.blocks = nn.ModuleList(SPADEBlock(a, b, n_targets, hidden)
                                    for a, b in pairwise(widths))
        self.out = _conv(c_spade[-1], latent_channels, 7)

    def forward(self, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = torch.as_tensor(target, device=z.device).long().reshape(-1)
        if target.shape[0] != z.shape[0]:
            raise ValueError(f"one target index per sample: {target.shape[0]} for "
                             f"{z.shape[0]} latents")
        if (target < 0).any() or (target >= self.n_targets).any():
            raise ValueError(f"target index outside 0..{self.n_targets - 1}")
        x = self.res(self.head(z))
        for block in self.blocks:
            x = block(x, target)
        return self.out(x)
