"""Cut a normalised volume into model-sized 2D/2.5D slices and blend predictions back.

Slices are taken along the training slice axis (array axis of the canonical volume, as the
shards of docs/dataset-format.md), each with ``k`` context slices per side (clamped at the
ends, as in training). In-plane, the region to translate is covered by tiles of the
training slice size: one centred tile, padded with the background value, when the region
fits (the usual case), otherwise overlapping tiles blended with ramp weights so that no seam
appears. Nothing outside the volume is ever written back.

Example:
    >>> import numpy as np
    >>> plan = SlicePlan((4, 10, 6), (8, 8), context=1)
    >>> len(plan.tiles), plan.tiles[0]
    (8, (0, 0, -1))
    >>> plan.batch(np.zeros((4, 10, 6), np.float32), plan.tiles[:2], -1.0).shape
    (2, 3, 8, 8)
"""

from __future__ import annotations

import math

import numpy as np


def tile_starts(lo: int, hi: int, size: int, overlap: float = 0.25) -> list[int]:
    """Start indices of tiles of ``size`` covering ``[lo, hi)`` (may start below 0)."""
    length = hi - lo
    if length <= size:
        return [lo + (length - size) // 2]
    stride = size * (1.0 - overlap)
    n = math.ceil((length - size) / stride) + 1
    return sorted({int(np.rint(v)) for v in np.linspace(lo, hi - size, n)})


def ramp(size: int, fade: int) -> np.ndarray:
    """1-D blending weights: linear from the tile edges over ``fade`` pixels, flat inside."""
    i = np.arange(size, dtype=np.float32)
    return np.clip(np.minimum(i + 1, size - i) / max(fade, 1), 0.0, 1.0)


class SlicePlan:
    """Which tiles to translate, and how to put them back.

    Args:
        shape: (N, A, B) of the volume with the slice axis moved first.
        size: (H, W) training slice size.
        context: k context slices per side (0 for 2D).
        box: ((a0, a1), (b0, b1)) in-plane region to cover; the whole plane when None.
        slices: slice indices to translate; all when None.
    """

    def __init__(self, shape, size, context: int = 0, box=None, slices=None,
                 overlap: float = 0.25) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.size = (int(size[0]), int(size[1]))
        self.context = int(context)
        n, a, b = self.shape
        (a0, a1), (b0, b1) = box if box is not None else ((0, a), (0, b))
        starts_a = tile_starts(a0, a1, self.size[0], overlap)
        starts_b = tile_starts(b0, b1, self.size[1], overlap)
        indices = range(n) if slices is None else sorted(int(s) for s in slices)
        self.tiles = [(k, sa, sb) for k in indices for sa in starts_a for sb in starts_b]
        fade = [max(1, int(s * overlap / 2)) for s in self.size]
        wa = ramp(self.size[0], fade[0]) if len(starts_a) > 1 else np.ones(self.size[0])
        wb = ramp(self.size[1], fade[1]) if len(starts_b) > 1 else np.ones(self.size[1])
        self.weight = np.outer(wa, wb).astype(np.float32)

    def _window(self, start: int, length: int, extent: int) -> tuple[slice, slice]:
        """(source slice in the volume, destination slice in the tile) of one axis."""
        lo, hi = max(start, 0), min(start + length, extent)
        return slice(lo, hi), slice(lo - start, hi - start)

    def batch(self, vol: np.ndarray, tiles, background: float) -> np.ndarray:
        """(len(tiles), 2k+1, H, W) stacks of slices n-k..n+k, padded with ``background``."""
        n, a, b = self.shape
        h, w = self.size
        k = self.context
        out = np.full((len(tiles), 2 * k + 1, h, w), background, dtype=np.float32)
        for i, (s, sa, sb) in enumerate(tiles):
            src_a, dst_a = self._window(sa, h, a)
            src_b, dst_b = self._window(sb, w, b)
            neighbours = np.clip(np.arange(s - k, s + k + 1), 0, n - 1)
            out[i, :, dst_a, dst_b] = vol[neighbours][:, src_a, src_b]
        return out

    def accumulate(self, total: np.ndarray, weights: np.ndarray, tiles,
                   predictions: np.ndarray) -> None:
        """Add weighted (len(tiles), H, W) predictions into ``total``/``weights`` (N, A, B)."""
        _, a, b = self.shape
        h, w = self.size
        for (s, sa, sb), pred in zip(tiles, predictions, strict=True):
            src_a, dst_a = self._window(sa, h, a)
            src_b, dst_b = self._window(sb, w, b)
            wgt = self.weight[dst_a, dst_b]
            total[s, src_a, src_b] += pred[dst_a, dst_b] * wgt
            weights[s, src_a, src_b] += wgt


def body_box(mask: np.ndarray, margin: int = 4):
    """In-plane bounding box ((a0, a1), (b0, b1)) of a (N, A, B) mask over all slices, plus
    ``margin`` voxels, and the slices that contain body or neighbour one that does (so that
    resampling back to a finer grid never interpolates against untranslated slices)."""
    _, a, b = mask.shape
    rows = np.flatnonzero(mask.any(axis=(0, 2)))
    cols = np.flatnonzero(mask.any(axis=(0, 1)))
    has_body = mask.any(axis=(1, 2))
    if rows.size == 0:
        return None, []
    near = has_body | np.r_[has_body[1:], False] | np.r_[False, has_body[:-1]]
    slices = np.flatnonzero(near)
    box = ((max(0, rows[0] - margin), min(a, rows[-1] + 1 + margin)),
           (max(0, cols[0] - margin), min(b, cols[-1] + 1 + margin)))
    return box, [int(s) for s in slices]
