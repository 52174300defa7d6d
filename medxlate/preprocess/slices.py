"""Step 8: cut a volume into fixed-size 2D slices along one axis, and put them back.

A slice ``n`` is ``np.take(volume, n, axis)``; its two remaining array axes, in order, are the
shard's ``H`` and ``W``. Padding/cropping to ``size`` is centred and described by one
``offset = [oh, ow]`` per subject::

    shard[n, h, w] == np.take(volume, n, axis)[h - oh, w - ow]   (where that index exists)

so ``oh > 0`` means padding and ``oh < 0`` cropping.

Example:
    >>> v = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    >>> s, off = to_slices(v, axis=2, size=(4, 5), fill=-1.0)
    >>> s.shape, off
    ((4, 4, 5), [1, 1])
    >>> bool((from_slices(s, 2, v.shape, off) == v).all())
    True
"""

from __future__ import annotations

import numpy as np


def centred_offset(shape_hw, size) -> list[int]:
    """Offsets that centre an (h, w) plane in ``size`` (negative: the plane is cropped)."""
    return [int((t - n) // 2) for n, t in zip(shape_hw, size)]


def _ranges(n: int, t: int, o: int) -> tuple[slice, slice]:
    """Matching source (volume) and destination (slice) ranges along one axis."""
    src_lo, src_hi = max(0, -o), min(n, t - o)
    return slice(src_lo, src_hi), slice(src_lo + o, src_hi + o)


def to_slices(volume: np.ndarray, axis: int, size, fill: float = 0.0,
              offset=None) -> tuple[np.ndarray, list[int]]:
    """``(slices (N, H, W), offset)``; outside the volume slices hold ``fill``."""
    moved = np.moveaxis(np.asarray(volume), axis, 0)
    n, h, w = moved.shape
    offset = list(offset) if offset is not None else centred_offset((h, w), size)
    out = np.full((n, int(size[0]), int(size[1])), fill, dtype=moved.dtype)
    (sh, dh), (sw, dw) = _ranges(h, int(size[0]), offset[0]), _ranges(w, int(size[1]), offset[1])
    out[:, dh, dw] = moved[:, sh, sw]
    return out, offset


def from_slices(slices: np.ndarray, axis: int, shape, offset, fill: float = 0.0) -> np.ndarray:
    """Inverse of :func:`to_slices`: a volume of ``shape`` (``fill`` where slices were cropped)."""
    shape = tuple(int(s) for s in shape)
    moved_shape = (shape[axis],) + tuple(s for i, s in enumerate(shape) if i != axis)
    out = np.full(moved_shape, fill, dtype=np.asarray(slices).dtype)
    _, h, w = moved_shape
    t_h, t_w = slices.shape[1:]
    (sh, dh), (sw, dw) = _ranges(h, t_h, offset[0]), _ranges(w, t_w, offset[1])
    out[:, sh, sw] = slices[:, dh, dw]
    return np.moveaxis(out, 0, axis)


def body_fraction(mask_slices: np.ndarray) -> np.ndarray:
    """Fraction of each (N, H, W) slice's area inside the body."""
    return mask_slices.reshape(len(mask_slices), -1).mean(1)
