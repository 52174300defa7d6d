"""Separable box sums on torch tensors, exactly as ``scipy.ndimage.uniform_filter`` sums.

SSIM only needs the local box statistics of voxels at least ``(w - 1) // 2`` voxels from
the border (the map is cropped there), and the windows of those voxels never leave the
volume: a *valid* box sum along each axis gives exactly the cropped map, with no padding.
:func:`symmetric_pad` adds scipy's ``mode="reflect"`` border (half-sample symmetric,
``d c b a | a b c d``; this is NOT torch's ``F.pad(mode="reflect")``, which is
``d c b | a b c d``) for callers who want the full-size map.
"""

from __future__ import annotations

import torch


def box_sum_valid(t: torch.Tensor, axis: int, w: int) -> torch.Tensor:
    """Sum of ``w`` consecutive samples along ``axis``; the output is ``w - 1`` shorter.

    Accumulates the ``w`` shifted views in place into one buffer: no cumulative sum (whose
    rounding error grows with the axis length) and no temporaries.

    Example:
        >>> box_sum_valid(torch.arange(6.0), 0, 3).tolist()
        [3.0, 6.0, 9.0, 12.0]
    """
    n = t.shape[axis]
    if w < 1 or w > n:
        raise ValueError(f"window {w} does not fit an axis of {n} samples")
    k = n - w + 1
    if w == 1:
        return t.clone()
    out = torch.add(t.narrow(axis, 0, k), t.narrow(axis, 1, k))
    for shift in range(2, w):
        out.add_(t.narrow(axis, shift, k))
    return out


def box_sum_3d(t: torch.Tensor, w: int) -> torch.Tensor:
    """Valid ``w x w x w`` box sums over the last three axes."""
    for axis in (-3, -2, -1):
        t = box_sum_valid(t, t.dim() + axis, w)
    return t


def symmetric_pad(t: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the last three axes by ``pad`` with scipy's 'reflect' (half-sample symmetric) rule.

    Example:
        >>> symmetric_pad(torch.arange(4.0).reshape(1, 1, 4), 2)[0, 0].tolist()
        [1.0, 0.0, 0.0, 1.0, 2.0, 3.0, 3.0, 2.0]
    """
    for axis in (-3, -2, -1):
        n = t.shape[axis]
        idx = torch.arange(-pad, n + pad, device=t.device)
        # fold the index into [0, 2n) then mirror the upper half: ... 1 0 | 0 1 ... n-1 | n-1 ...
        idx = torch.remainder(idx, 2 * n)
        idx = torch.where(idx >= n, 2 * n - 1 - idx, idx)
        t = t.index_select(t.dim() + axis, idx)
    return t
