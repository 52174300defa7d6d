"""The half/half slice split of benchmarks/unet_mridir.py: disjoint, covering, gap kept.

Oracles: hand-written splits, and for every small (n, gap) the properties checked one by one
on plain Python sets; the slab's world positions against the affine by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from medxlate.bench.slice_halves import halves, scored_range, slab
from medxlate.errors import InputError
from medxlate.io.volume import Volume


def test_hand_written_splits():
    assert halves(0, 11, gap=2) == (range(0, 5), range(7, 11))
    assert halves(0, 10, gap=2) == (range(0, 4), range(6, 10))
    assert halves(3, 9, gap=0) == (range(3, 6), range(6, 9))
    assert halves(5, 9, gap=2) == (range(5, 6), range(8, 9))


@pytest.mark.parametrize("gap", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("n", range(2, 25))
@pytest.mark.parametrize("start", [0, 7])
def test_disjoint_covering_gap_kept(start, n, gap):
    if n < gap + 2:
        with pytest.raises(InputError, match="cannot make two halves"):
            halves(start, start + n, gap)
        return
    first, second = halves(start, start + n, gap)
    a, b = set(first), set(second)
    left_out = set(range(start, start + n)) - a - b
    assert a and b and not a & b
    assert a | b | left_out == set(range(start, start + n))
    assert len(left_out) == gap
    assert max(a) < min(left_out or {min(b)}) and max(left_out or {max(a)}) < min(b)
    assert min(b) - max(a) - 1 == gap             # the gap sits between the halves
    assert len(a) - len(b) in (0, 1)              # halves, the first longer when odd
    # no 2.5D stack of context k <= gap centred in one half reaches the other half
    for k in range(gap + 1):
        assert all(abs(i - j) > k for i in a for j in b)


def test_negative_gap_refused():
    with pytest.raises(InputError, match="gap must be 0 or more"):
        halves(0, 10, gap=-1)


def test_scored_range_counts_the_filled_slices():
    mask = np.zeros((4, 4, 12), bool)
    mask[1, 2, 3] = mask[0, 0, 8] = True          # slices 3 and 8 filled, 4-7 empty between
    assert scored_range(mask) == (3, 9)
    assert scored_range(mask, axis=0) == (0, 2)
    with pytest.raises(InputError, match="mask is empty"):
        scored_range(np.zeros((3, 3, 3), bool))


def test_slab_keeps_world_positions():
    affine = np.array([[2.0, 0, 0, -10], [0, 2.0, 0, 5], [0, 0, 2.5, -30], [0, 0, 0, 1]])
    arr = np.arange(4 * 3 * 10, dtype=np.float32).reshape(4, 3, 10)
    part = slab(Volume(arr, affine, "MR"), range(6, 9))
    assert part.shape == (4, 3, 3)
    np.testing.assert_array_equal(part.array, arr[:, :, 6:9])
    # voxel (0, 0, 0) of the slab is voxel (0, 0, 6) of the volume: z = -30 + 6 * 2.5
    np.testing.assert_allclose(part.affine[:3, 3], [-10.0, 5.0, -15.0])
    np.testing.assert_allclose(part.affine[:3, :3], affine[:3, :3])
