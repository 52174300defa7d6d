"""The Diffusion Transformer (Peebles & Xie, ICCV 2023) on latent images.

Patchify (a p x p convolution of stride p) -> tokens + fixed 2-D sin-cos position embeddings
-> N DiT blocks with adaLN-Zero -> final adaLN layer -> linear -> unpatchify. The
conditioning is one vector per sample (B, cond_dim) that produces, per block, six modulation
vectors (shift, scale, gate for attention and for the MLP). The modulation layers and the
final layer start at zero, so every block starts as the identity and the network outputs 0.

Example:
    >>> import torch
    >>> net = DiT(in_channels=4, out_channels=8, input_size=8, patch=2, hidden=32, depth=2,
    ...           heads=2, cond_dim=32)
    >>> net(torch.randn(3, 4, 8, 8), torch.randn(3, 32)).abs().max().item()
    0.0
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medxlate.models.nets.blocks import timestep_embedding


def sincos_1d(dim: int, pos: np.ndarray) -> np.ndarray:
    """(len(pos), dim) embedding: sin of pos * omega_i, then cos, omega_i = 10000^(-2i/dim)."""
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.outer(pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(dim: int, grid: int) -> np.ndarray:
    """(grid*grid, dim) fixed 2-D sin-cos position embedding (MAE/DiT): half the channels
    encode the column, half the row; tokens in row-major order."""
    if dim % 4:
        raise ValueError(f"hidden size {dim} must be divisible by 4 for 2-D sin-cos")
    rows, cols = np.meshgrid(np.arange(grid, dtype=np.float64),
                             np.arange(grid, dtype=np.float64), indexing="ij")
    return np.concatenate([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], axis=1)


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, (H/p)(W/p), p*p*C) patches, row-major, channels last in a patch."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(tokens: torch.Tensor, p: int, channels: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: (B, (H/p)(W/p), p*p*C) -> (B, C, H, W)."""
    b = tokens.shape[0]
    x = tokens.reshape(b, h // p, w // p, p, p, channels)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(b, channels, h, w)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class TimestepEmbedder(nn.Module):
    """t -> 256-d sinusoid -> Linear -> SiLU -> Linear (DiT)."""

    def __init__(self, hidden: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.freq_dim))


class Attention(nn.Module):
    """Multi-head self-attention through scaled_dot_product_attention."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"hidden size {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class DiTBlock(nn.Module):
    """adaLN-Zero block: x += gate * f(modulate(LN(x), shift, scale)) for attention and MLP."""

    def __init__(self, dim: int, heads: int, cond_dim: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        inner = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, inner), nn.GELU(approximate="tanh"),
                                 nn.Linear(inner, dim))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 6 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = \
            self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_a[:, None] * self.attn(modulate(self.norm1(x), shift_a, scale_a))
        return x + gate_m[:, None] * self.mlp(modulate(self.norm2(x), shift_m, scale_m))


class FinalLayer(nn.Module):
    """adaLN (shift, scale) -> linear to p*p*out_channels per token."""

    def __init__(self, dim: int, patch: int, out_channels: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, patch * patch * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 2 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm(x), shift, scale))


class DiT(nn.Module):
    """The DiT backbone: ``forward(x (B, in, S, S), c (B, cond_dim)) -> (B, out, S, S)``.

    Args:
        in_channels / out_channels: latent channels in and out (out = 2 * latent channels
            for eps + learned-range variance).
        input_size: latent side S (divisible by ``patch``).
        patch: patch side p; hidden: width D; depth: blocks N; heads: attention heads.
        cond_dim: width of the conditioning vector c.
    """

    def __init__(self, in_channels: int, out_channels: int, input_size: int, patch: int,
                 hidden: int, depth: int, heads: int, cond_dim: int,
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if input_size % patch:
            raise ValueError(f"latent size {input_size} is not divisible by patch {patch}")
        self.patch, self.out_channels, self.input_size = patch, out_channels, input_size
        self.x_embedder = nn.Conv2d(in_channels, hidden, patch, stride=patch)
        grid = input_size // patch
        self.register_buffer("pos_embed", torch.from_numpy(sincos_2d(hidden, grid)).float()[None],
                             persistent=False)
        self.blocks = nn.ModuleList(DiTBlock(hidden, heads, cond_dim, mlp_ratio)
                                    for _ in range(depth))
        self.final_layer = FinalLayer(hidden, patch, out_channels, cond_dim)
        self._init_weights()

    def _init_weights(self) -> None:
        # As DiT: xavier-uniform linears (the patch embedding too, as a linear), zero biases,
        # then zero the adaLN modulations and the output layer (adaLN-Zero).
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.x_embedder.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.bias)
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        for layer in (self.final_layer.adaLN_modulation[-1], self.final_layer.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens with position embeddings, (B, L, D)."""
        return self.x_embedder(x).flatten(2).transpose(1, 2) + self.pos_embed

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.tokens(x)
        for block in self.blocks:
            h = block(h, c)
        out = self.final_layer(h, c)
        return unpatchify(out, self.patch, self.out_channels, x.shape[-2], x.shape[-1])
