"""Fixed-size 3D boxes around the foreground: crop/pad a volume to a model's size and back.

A box is ``start`` (voxel index of the box's first voxel on the volume's grid; negative or
past the end where the box pads) and ``size``. :func:`cut` and :func:`paste` are exact
inverses on the voxels the box covers, so 3D models train on what preprocess recorded and
synthesis undoes its crop/pad onto the input grid voxel for voxel.

Example:
    >>> a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    >>> start = box_start(np.ones(a.shape, bool), (4, 4, 4))
    >>> start
    [-1, -1, 0]
    >>> bool((paste(cut(a, start, (4, 4, 4), -1.0), start, a.shape, 0.0) == a).all())
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def box_start(mask: np.ndarray, size: Sequence[int]) -> list[int]:
    """First voxel of a ``size`` box centred on the bounding box of ``mask`` (the whole
    volume when the mask is empty)."""
    m = np.asarray(mask, bool)
    if m.any():
        idx = np.nonzero(m)
        lo = np.array([int(i.min()) for i in idx])
        hi = np.array([int(i.max()) + 1 for i in idx])
    else:
        lo, hi = np.zeros(3, int), np.array(m.shape)
    centre2 = lo + hi                       # twice the centre, to stay in integers
    return [int((c - s) // 2) for c, s in zip(centre2, size)]


def _overlap(start: Sequence[int], size: Sequence[int], shape: Sequence[int]):
    src, dst = [], []
    for s, n, full in zip(start, size, shape):
        a, b = max(s, 0), min(s + n, full)
        if b <= a:
            return None
        src.append(slice(a, b))
        dst.append(slice(a - s, b - s))
    return tuple(src), tuple(dst)


def cut(array: np.ndarray, start: Sequence[int], size: Sequence[int],
        fill: float) -> np.ndarray:
    """The ``size`` box at ``start`` of ``array``; voxels outside the array get ``fill``."""
    out = np.full(tuple(int(n) for n in size), fill, dtype=np.asarray(array).dtype)
    ov = _overlap(start, size, array.shape)
    if ov is not None:
        out[ov[1]] = array[ov[0]]
    return out


def paste(box: np.ndarray, start: Sequence[int], shape: Sequence[int],
          fill: float) -> np.ndarray:
    """Inverse of :func:`cut`: ``box`` placed at ``start`` on a ``shape`` grid (``fill``
    where the box does not reach)."""
    out = np.full(tuple(int(n) for n in shape), fill, dtype=np.asarray(box).dtype)
    ov = _overlap(start, box.shape, shape)
    if ov is not None:
        out[ov[0]] = box[ov[1]]
    return out
