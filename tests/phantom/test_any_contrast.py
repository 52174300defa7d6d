"""Random MR contrasts from labels (medxlate.phantom.any_contrast), hand-checkable cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medxlate.phantom.any_contrast import ContrastRanges, bias_field, random_contrast, \
    thick_slices

FLAT = ContrastRanges(slice_mm=(0.5, 0.5), bias=0.0, noise=0.0, gamma=0.0, spread=0.0)


def nested_boxes(shape=(12, 40, 40)) -> np.ndarray:
    lab = np.zeros(shape, np.int16)
    lab[:, 3:37, 3:37] = 1
    lab[:, 10:30, 10:30] = 2
    lab[:, 16:24, 16:24] = 3
    return lab


def interior(lab: np.ndarray, t: int) -> np.ndarray:
    """Voxels of tissue t at least 3 voxels in-plane from another tissue (the blur's reach:
    sigma <= 1 voxel, truncated at 3 sigma; tissues span every slice)."""
    plane = np.zeros((3, 3, 3), bool)
    plane[1] = ndimage.generate_binary_structure(2, 1)
    return ndimage.binary_erosion(lab == t, plane, iterations=3)


def test_seeded():
    lab = nested_boxes()
    a = random_contrast(lab, (2, 2, 2), np.random.default_rng(7))
    b = random_contrast(lab, (2, 2, 2), np.random.default_rng(7))
    c = random_contrast(lab, (2, 2, 2), np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_without_noise_bias_and_thick_slices_each_tissue_is_one_value():
    lab = nested_boxes()
    img = random_contrast(lab, (2, 2, 2), np.random.default_rng(3), FLAT)
    assert (img[lab == 0] == 0).all()
    for t in (1, 2, 3):  # away from edges (blur <= 1 voxel, truncated at 3 sigma)
        values = img[interior(lab, t)]
        assert values.size and values.std() < 1e-3 * max(values.mean(), 1e-3)
    # the brightest interior is 1 (the image is scaled to its maximum before gamma = 1)
    assert img.max() == pytest.approx(1.0, abs=1e-6)


def test_contrasts_differ_between_draws():
    lab = nested_boxes()
    orders = set()
    for seed in range(12):
        img = random_contrast(lab, (2, 2, 2), np.random.default_rng(seed), FLAT)
        means = [img[interior(lab, t)].mean() for t in (1, 2, 3)]
        orders.add(tuple(np.argsort(means)))
    assert len(orders) >= 4  # of the 6 possible tissue orderings


def test_keep_returns_the_same_slices_as_the_whole_stack_when_nothing_crosses_slices():
    # thick slices across axis 2 only: slices of axis 0 are independent apart from the blur,
    # which the kept margin covers; compare against the whole stack drawn with one seed
    lab = nested_boxes((15, 40, 40))
    whole = random_contrast(lab, (2, 2, 2), np.random.default_rng(1), FLAT, axes=(2,))
    part = random_contrast(lab, (2, 2, 2), np.random.default_rng(1), FLAT, axes=(2,),
                           keep=(7, 8))
    assert part.shape == (1, 40, 40)
    assert np.abs(part[0] - whole[7]).max() < 0.02


def test_thick_slices_average_a_slab():
    a = np.zeros((30, 1, 1), np.float32)
    a[15] = 1.0  # a thin line across 1 voxel
    out = thick_slices(a, 0, 5.0, 2.0)
    assert out.max() < 0.5 and out.sum() == pytest.approx(1.0, rel=0.25)  # smeared, kept
    assert np.array_equal(thick_slices(a, 0, 1.0, 0.0), a)  # no thicker than a voxel: as is


def test_thick_slices_keep_a_linear_ramp():
    ramp = np.arange(40, dtype=np.float32)[:, None, None] * np.ones((1, 3, 3), np.float32)
    out = thick_slices(ramp, 0, 4.0, 1.3)
    assert np.allclose(out[6:-6], ramp[6:-6], atol=1e-3)  # linear data survive blur + lerp


def test_bias_field_is_smooth_and_positive():
    f = bias_field((10, 50, 60), np.random.default_rng(0), 0.3)
    assert f.shape == (10, 50, 60) and (f > 0).all()
    assert np.abs(np.diff(np.log(f), axis=1)).max() < 0.1  # no jumps between neighbours
    assert np.array_equal(bias_field((4, 8, 8), np.random.default_rng(0), 0.0),
                          np.ones((4, 8, 8), np.float32))


def test_rician_noise_lifts_the_dark_tissue():
    lab = nested_boxes()
    ranges = ContrastRanges(slice_mm=(0.5, 0.5), bias=0.0, noise=0.2, gamma=0.0, spread=0.0)
    img = random_contrast(lab, (2, 2, 2), np.random.default_rng(5), ranges)
    assert (img >= 0).all() and (img[lab == 0] == 0).all()
