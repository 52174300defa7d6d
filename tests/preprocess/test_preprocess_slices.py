"""Slices, padding offsets, crop undo and Canny contours on a volume with a known bone ring."""

import numpy as np
import pytest

from medxlate.io import Volume
from medxlate.preprocess.contours import contour_maps
from medxlate.preprocess.crop import crop, crop_box, crop_record, uncrop
from medxlate.intensity import DEFAULT_NORMALISATION, normalise_ct
from medxlate.preprocess.slices import body_fraction, from_slices, to_slices


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slices_pad_and_crop_round_trip(axis):
    v = np.random.default_rng(axis).normal(size=(30, 9, 12)).astype(np.float32)
    s, offset = to_slices(v, axis, (16, 10), fill=-5.0)
    plane = np.take(v, 3, axis)
    assert s.shape == (v.shape[axis], 16, 10)
    oh, ow = offset
    assert offset == [(16 - plane.shape[0]) // 2, (10 - plane.shape[1]) // 2]
    # shard[n, h, w] == slice[h - oh, w - ow] wherever that index exists
    for h, w in [(8, 5), (max(oh, 0), max(ow, 0))]:
        i, j = h - oh, w - ow
        if 0 <= i < plane.shape[0] and 0 <= j < plane.shape[1]:
            assert s[3, h, w] == plane[i, j]
    back = from_slices(s, axis, v.shape, offset, fill=np.nan)
    kept = ~np.isnan(back)
    np.testing.assert_array_equal(back[kept], v[kept])
    if axis != 0:  # axis 0 leaves a 9 x 12 plane: fits in 16 x 10 only after cropping W
        assert kept.sum() > 0


def test_body_fraction():
    m = np.zeros((2, 10, 10), np.uint8)
    m[1, :5] = 1
    np.testing.assert_allclose(body_fraction(m), [0.0, 0.5])


def test_crop_records_and_undo():
    a = np.zeros((40, 30, 20), np.float32)
    a[10:20, 5:25, 8:12] = 1.0
    vol = Volume(a, np.diag([1.0, 2.0, 2.5, 1.0]), "CT")
    start, stop = crop_box(a > 0, vol.spacing, margin_mm=5.0)
    assert start == [5, 2, 6] and stop == [25, 28, 14]
    small = crop(vol, start, stop)
    # the first voxel of the crop sits where voxel `start` was
    np.testing.assert_allclose(small.world([0, 0, 0]), vol.world(start))
    np.testing.assert_array_equal(uncrop(small.array, crop_record(vol, start, stop), 0.0), a)


def _bone_ring(n=96, r_in=20.0, r_out=26.0):
    y, x = np.mgrid[:n, :n] - (n - 1) / 2
    r = np.hypot(x, y)
    hu = np.where(r < 40, 40.0, -1000.0)
    hu[(r >= r_in) & (r < r_out)] = 1200.0
    return hu, r


def test_ct_contours_land_on_bone_edges():
    hu, r = _bone_ring()
    x = normalise_ct(hu, DEFAULT_NORMALISATION)[None]
    edges = contour_maps(x, {"sigma": 1.5, "low_threshold": 0.1, "high_threshold": 0.2})[0]
    assert edges.dtype == np.uint8 and set(np.unique(edges)) == {0, 1}
    radii = r[edges == 1]
    # every edge pixel lies within 1.5 px of a true boundary (bone inner/outer, body outline)
    dist = np.min(np.abs(radii[:, None] - np.array([20.0, 26.0, 40.0])[None]), axis=1)
    assert dist.max() <= 1.5
    # both bone edges are found all around: pixels near r=20 and r=26 cover most angles
    for boundary in (20.0, 26.0):
        near = np.abs(radii - boundary) <= 1.5
        circumference = 2 * np.pi * boundary
        assert near.sum() > 0.8 * circumference


def test_contours_of_a_flat_slice_are_empty():
    out = contour_maps(np.zeros((2, 16, 16), np.float32), {"sigma": 1.0, "low_threshold": 0.1,
                                                           "high_threshold": 0.2})
    assert out.sum() == 0
