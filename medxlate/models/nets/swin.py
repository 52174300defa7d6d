"""Swin-transformer blocks on (B, C, H, W) feature maps (Liu et al. 2021, "Swin Transformer:
Hierarchical Vision Transformer using Shifted Windows").

A :class:`SwinPair` is the W-MSA block followed by the SW-MSA block (windows shifted by
(l/2, l/2)), each ``x + MSA(LN(x))`` then ``x + MLP(LN(x))`` with MLP ratio 4 (Eq. 3 of the
Swin paper). Attention runs through ``F.scaled_dot_product_attention`` on all windows of the
batch at once, with the relative position bias and the shifted-window mask folded into one
additive float mask, so GPUs can use their fused kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Added to the logits of token pairs from different regions of a shifted window: exp(-100)
# underflows to 0 after softmax in float32 and bf16, and stays finite (no NaN when a
# whole row would be masked, which cannot happen here but costs nothing to guard).
MASK_VALUE = -100.0


def relative_position_index(window: int) -> torch.Tensor:
    """(l^2, l^2) index into a (2l-1)^2 bias table: token pair (i, j) of an l x l window maps
    to (dy + l - 1) * (2l - 1) + (dx + l - 1) with (dy, dx) = position_i - position_j."""
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()])                  # (2, N)
    rel = pos[:, :, None] - pos[:, None, :] + (window - 1)           # (2, N, N), in 0..2l-2
    return rel[0] * (2 * window - 1) + rel[1]


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * nW, l*l, C), windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW, l*l, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shifted_window_mask(h: int, w: int, window: int, shift: int) -> torch.Tensor:
    """(nW, l^2, l^2) additive mask for SW-MSA on an H x W map rolled by (-shift, -shift).

    After the cyclic roll, the last row/column band of windows holds tokens from the far
    side of the image; tokens are labelled by the region they came from (3 bands per axis:
    [0, H-l), [H-l, H-shift), [H-shift, H)) and pairs with different labels get MASK_VALUE.
    """
    labels = torch.zeros(h, w, dtype=torch.long)
    bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    count = 0
    for ys in bands:
        for xs in bands:
            labels[ys, xs] = count
            count += 1
    win = window_partition(labels[None, :, :, None], window).squeeze(-1)   # (nW, N)
    differ = win[:, :, None] != win[:, None, :]
    return differ.float() * MASK_VALUE


class WindowAttention(nn.Module):
    """Multi-head self-attention inside l x l windows with a learned relative position bias
    B in R^{(2l-1)^2 x heads} (Swin Eq. 4: softmax(Q K^T / sqrt(d) + B) V)."""

    def __init__(self, dim: int, heads: int, window: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"channels {dim} not divisible by {heads} heads")
        self.dim, self.heads, self.window = dim, heads, window
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.register_buffer("bias_index", relative_position_index(window), persistent=False)

    def position_bias(self) -> torch.Tensor:
        """(heads, l^2, l^2) relative position bias."""
        n = self.window * self.window
        return self.bias_table[self.bias_index.reshape(-1)].reshape(n, n, -1).permute(2, 0, 1)

    def forward(self, windows: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``windows`` (B * nW, N, C); ``mask`` (nW, N, N) additive or None."""
        bw, n, c = windows.shape
        q, k, v = (self.qkv(windows).reshape(bw, n, 3, self.heads, c // self.heads)
                   .permute(2, 0, 3, 1, 4).unbind(0))                 # each (B*nW, heads, N, d)
        bias = self.position_bias().to(q.dtype)[None]               # (1, heads, N, N)
        if mask is not None:
            nw = mask.shape[0]
            bias = (bias + mask.to(q.dtype)[:, None]).repeat(bw // nw, 1, 1, 1)
        else:
            bias = bias.expand(bw, -1, -1, -1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B*nW, heads, N, d)
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class SwinBlock(nn.Module):
    """One Swin block: ``x + (S)W-MSA(LN(x))``, then ``x + MLP(LN(x))``.

    Args:
        dim: channels. heads: attention heads. window: l (clamped to the map size).
        shifted: SW-MSA (roll by l/2) instead of W-MSA. mlp_ratio: MLP hidden width / dim.
    """

    def __init__(self, dim: int, heads: int, window: int, shifted: bool, mlp_ratio: float = 4.0):
        super().__init__()
        self.window, self.shifted = window, shifted
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, window)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self._masks: dict[tuple, torch.Tensor] = {}

    def _mask(self, h: int, w: int, shift: int, device) -> torch.Tensor:
        key = (h, w, shift, str(device))
        if key not in self._masks:
            self._masks[key] = shifted_window_mask(h, w, self.window, shift).to(device)
        return self._masks[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, H, W, C) with H and W multiples of the window."""
        h, w = x.shape[1:3]
        l = self.window
        if h % l or w % l:
            raise ValueError(f"feature map {h}x{w} is not a multiple of the window {l}")
        # A window covering the whole map has nothing to shift (Swin does the same).
        shift = l // 2 if self.shifted and (h > l or w > l) else 0
        y = self.norm1(x)
        if shift:
            y = torch.roll(y, shifts=(-shift, -shift), dims=(1, 2))
        mask = self._mask(h, w, shift, x.device) if shift else None
        y = window_reverse(self.attn(window_partition(y, l), mask), l, h, w)
        if shift:
            y = torch.roll(y, shifts=(shift, shift), dims=(1, 2))
        x = x + y
        return x + self.mlp(self.norm2(x))


class SwinPair(nn.Module):
    """W-MSA block then SW-MSA block on a (B, C, H, W) map (one "Swin-transformer block" of
    the MT-DDPM sections); the window is clamped to the map so deep sections still work."""

    def __init__(self, dim: int, heads: int, window: int, size: int, mlp_ratio: float = 4.0):
        super().__init__()
        window = min(window, size)
        self.blocks = nn.ModuleList([SwinBlock(dim, heads, window, shifted, mlp_ratio)
                                     for shifted in (False, True)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.permute(0, 2, 3, 1)
        for block in self.blocks:
            y = block(y)
        return y.permute(0, 3, 1, 2).contiguous()
