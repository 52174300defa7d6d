"""Half/half split of one subject's slices: fit on one contiguous half, score on the other.

With a single scanned specimen (../shared/data/mridir-subset) there is no second subject to
hold out, so the slices are: the scored range (the slices whose mask holds a voxel) is cut
along the slice axis into a first half, ``gap`` slices left out, and a second half. The
first half gets the extra slice when the count is odd. A model trained on one half and
scored on the other never sees a scored slice: each half is cut out as its own volume, and a
gap of at least the 2.5D context k keeps every input stack (k slices either side of its
centre) of one half off the other half's slices even on the uncut grid.

Example:
    >>> halves(0, 11, gap=2)
    (range(0, 5), range(7, 11))
"""

from __future__ import annotations

import numpy as np

from medxlate.errors import InputError
from medxlate.io.volume import Volume
from medxlate.preprocess.crop import crop


def scored_range(mask: np.ndarray, axis: int = 2) -> tuple[int, int]:
    """``(start, stop)`` of the slices along ``axis`` that hold at least one mask voxel
    (the slices in between count too, even if empty)."""
    other = tuple(a for a in range(mask.ndim) if a != axis)
    filled = np.flatnonzero(np.asarray(mask).any(axis=other))
    if filled.size == 0:
        raise InputError("half split: the mask is empty")
    return int(filled[0]), int(filled[-1]) + 1


def halves(start: int, stop: int, gap: int) -> tuple[range, range]:
    """Slices ``[start, stop)`` cut into (first half, second half) with ``gap`` slices left out
    between them; the first half is the longer by one when ``stop - start - gap`` is odd.

    Raises:
        InputError: a negative gap, or fewer than ``gap + 2`` slices (a half would be empty).
    """
    if gap < 0:
        raise InputError(f"half split: the gap must be 0 or more slices, not {gap}")
    n = stop - start
    if n < gap + 2:
        raise InputError(f"half split: {n} slice(s) cannot make two halves with a gap of {gap}")
    first = (n - gap + 1) // 2
    return range(start, start + first), range(start + first + gap, stop)


def slab(vol: Volume, slices: range, axis: int = 2) -> Volume:
    """The sub-volume of ``slices`` along ``axis``, its affine moved to keep world positions."""
    lo, hi = [0] * vol.array.ndim, list(vol.shape)
    lo[axis], hi[axis] = slices.start, slices.stop
    return crop(vol, lo, hi)
