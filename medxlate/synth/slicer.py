"""Cut a normalised volume into model-sized 2D/2.5D slices and blend predictions back.

Slices are taken along the training slice axis (array axis of the canonical volume, as the
shards of docs/dataset-format.md), each with ``k`` context slices per side (clamped at the
ends, as in training). In-plane, the region to translate is covered by tiles of the
training slice size: one centred tile, padded with the background value, when the region
fits. A fully convolutional model (``spec.extra["fully_convolutional"]``) gets the whole
region as one tile, padded up to a multiple of its downsampling factor
(:func:`whole_slice_size`), so there are no tile edges at all. Otherwise the region is covered
by tiles overlapping by at least half, blended with weights (:func:`taper`) that are zero
within size/8 of every edge a tile shares with a neighbour (where a network's padding effects
live) and rise as sin^2 over the next size/4, so that no tile border reaches the output and
neighbouring tiles hand over smoothly. Nothing outside the volume is ever written back.

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


def whole_slice_size(extent, size, multiple: int | None = None) -> tuple[int, int]:
    """(H, W) of one tile covering an in-plane ``extent`` for a fully convolutional model.

    At least the training ``size``, and a multiple of ``multiple`` (default: the largest
    power of two dividing both training sizes, which every downsampling factor of a network
    that ran at that size divides).

    Example:
        >>> whole_slice_size((100, 40), (64, 64)), whole_slice_size((100, 40), (64, 48), 8)
        ((128, 64), (104, 48))
    """
    if multiple is None:
        both = math.gcd(int(size[0]), int(size[1]))
        multiple = both & -both  # lowest set bit: largest power of two dividing both
    multiple = max(1, int(multiple))
    return tuple(max(int(s), -(-int(e) // multiple) * multiple)  # type: ignore[return-value]
                 for e, s in zip(extent, size))


def tile_starts(lo: int, hi: int, size: int, overlap: float = 0.5) -> list[int]:
    """Start indices of tiles of ``size`` covering ``[lo, hi)`` (may start below 0)."""
    length = hi - lo
    if length <= size:
        return [lo + (length - size) // 2]
    stride = size * (1.0 - overlap)
    n = math.ceil((length - size) / stride) + 1
    return sorted({int(np.rint(v)) for v in np.linspace(lo, hi - size, n)})


def taper(size: int, lead: bool, trail: bool) -> np.ndarray:
    """1-D blending weights of a tile: 0 for the ``m = size // 8`` pixels next to a shared
    edge (``lead``: the low one, ``trail``: the high one), then ``sin^2`` up to 1 over the
    next ``r = size // 4`` pixels, 1 elsewhere. With neighbours at most size/2 apart, wherever
    one tile is 0 its neighbour is already 1 (``size/2 - m >= m + r``): weights never all
    vanish.

    Example:
        >>> [round(float(v), 2) for v in taper(16, True, False)[:8]]
        [0.0, 0.0, 0.04, 0.31, 0.69, 0.96, 1.0, 1.0]
    """
    m, r = max(1, size // 8), max(1, size // 4)
    i = np.arange(size, dtype=np.float64)
    rise = np.sin(np.pi / 2 * np.clip((i - m + 0.5) / r, 0.0, 1.0)) ** 2
    w = np.ones(size)
    if lead:
        w = np.minimum(w, np.where(i < m, 0.0, rise))
    if trail:
        w = np.minimum(w, np.where(i < m, 0.0, rise)[::-1])
    return w.astype(np.float32)


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
                 overlap: float = 0.5) -> None:
        if not 0.5 <= overlap < 1.0:
            raise ValueError(f"tile overlap must be in [0.5, 1), got {overlap}: the blending "
                             "weights need neighbours at most half a tile apart")
        self.shape = tuple(int(s) for s in shape)
        self.size = (int(size[0]), int(size[1]))
        self.context = int(context)
        n, a, b = self.shape
        (a0, a1), (b0, b1) = box if box is not None else ((0, a), (0, b))
        starts_a = tile_starts(a0, a1, self.size[0], overlap)
        starts_b = tile_starts(b0, b1, self.size[1], overlap)
        indices = range(n) if slices is None else sorted(int(s) for s in slices)
        self.tiles = [(k, sa, sb) for k in indices for sa in starts_a for sb in starts_b]
        self.weight_a = {s: taper(self.size[0], j > 0, j < len(starts_a) - 1)
                         for j, s in enumerate(starts_a)}
        self.weight_b = {s: taper(self.size[1], j > 0, j < len(starts_b) - 1)
                         for j, s in enumerate(starts_b)}

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
            wgt = np.outer(self.weight_a[sa], self.weight_b[sb])[dst_a, dst_b]
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
