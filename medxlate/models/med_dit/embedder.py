"""Med-DiT's vision embedder f_ve and its InfoNCE pretraining loss.

f_ve maps the MR latent (B, C, S, S) to tokens e_ve (B, L, D), L = (S/n)^2:
patchify into n x n patches (a convolution of kernel and stride n), a 3x3 convolution for
local features, channel attention (average and max pooling over the tokens, a shared
two-layer MLP with ReLU, outputs summed, sigmoid: Woo et al. 2018's CBAM channel module)
re-weighting the channels, then LayerNorm.

Example:
    >>> import torch
    >>> f_ve = VisionEmbedder(channels=4, latent_size=28, patch=7, dim=32)
    >>> tuple(f_ve(torch.randn(2, 4, 28, 28)).shape)
    (2, 16, 32)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medxlate.errors import UsageError


def allowed_patches(latent_size: int) -> list[int]:
    """Patch sides n that tile the latent exactly (n divides S), excluding 1 and S."""
    return [n for n in range(2, latent_size) if latent_size % n == 0]


class VisionEmbedder(nn.Module):
    """f_ve: MR latent -> e_ve (B, L, D).

    Args:
        channels: latent channels C; latent_size: S; patch: n (must divide S, 1 < n < S).
        dim: token width D (the DiT width); reduction: the MLP's hidden width is D/reduction.
    """

    def __init__(self, channels: int, latent_size: int, patch: int, dim: int,
                 reduction: int = 4) -> None:
        super().__init__()
        allowed = allowed_patches(latent_size)
        if patch not in allowed:
            raise UsageError(f"embedder patch {patch} does not tile a {latent_size}x"
                             f"{latent_size} latent; choose a divisor of {latent_size}: "
                             f"{', '.join(map(str, allowed)) or 'none (latent too small)'}")
        self.patch = patch
        self.patchify = nn.Conv2d(channels, dim, patch, stride=patch)
        self.local = nn.Conv2d(dim, dim, 3, padding=1)
        hidden = max(1, dim // reduction)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        f = self.local(self.patchify(z))                       # (B, D, S/n, S/n)
        weights = torch.sigmoid(self.mlp(f.mean(dim=(2, 3))) + self.mlp(f.amax(dim=(2, 3))))
        f = f * weights[:, :, None, None]
        return self.norm(f.flatten(2).transpose(1, 2))        # (B, L, D)


def info_nce(e_ve: torch.Tensor, tau: float) -> torch.Tensor:
    """The seed's InfoNCE loss: flatten e_ve to (B, L*D), L2-normalise the rows,
    sim = e e^T / tau, loss = -(1/B) sum_k log(exp(sim_kk) / sum_j exp(sim_kj))."""
    e = F.normalize(e_ve.flatten(1).float(), dim=1)
    sim = e @ e.t() / tau
    return -(torch.diagonal(sim) - torch.logsumexp(sim, dim=1)).mean()
