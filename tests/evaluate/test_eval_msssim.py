"""Masked MS-SSIM (SynthRAD2025) equals an independent numpy/scipy reference."""

import numpy as np
import pytest
import torch
from scipy.signal import fftconvolve

from medxlate.evaluate.ssim import downsample2, edge_pad_to, ms_ssim_masked
from tests.evaluate.eval_reference import ct_like, ref_ms_ssim


def test_downsample_matches_fftconvolve_same_then_stride():
    rng = np.random.default_rng(0)
    for shape in [(8, 9, 7), (97, 50, 13)]:
        a = rng.normal(size=shape)
        expected = fftconvolve(a, np.ones((2, 2, 2)) / 8, mode="same")[::2, ::2, ::2]
        got = downsample2(torch.from_numpy(a)).numpy()
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-12)
    # the first output plane averages the first input plane with zeros
    ones = torch.ones(4, 4, 4, dtype=torch.float64)
    out = downsample2(ones)
    assert out[0, 0, 0].item() == 0.125 and out[1, 1, 1].item() == 1.0


def test_edge_pad_splits_like_synthrad():
    t = torch.arange(3.0).reshape(3, 1, 1).expand(3, 2, 1).contiguous()
    p = edge_pad_to(t, 8)
    assert p.shape == (8, 8, 8)
    assert p[:, 0, 0].tolist() == [0.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0]  # 2 before, 3 after


@pytest.mark.parametrize("shape,seed", [((40, 37, 23), 0), ((101, 99, 98), 1)])
def test_ms_ssim_equals_reference_random(shape, seed):
    rng = np.random.default_rng(seed)
    ref = rng.uniform(-1200, 3300, shape).astype(np.float32)
    pred = (ref + rng.normal(0, 400, shape)).astype(np.float32)
    mask = rng.random(shape) > 0.3
    centre = tuple(slice(n // 2 - 3, n // 2 + 3) for n in shape)
    mask[centre] = True  # keep mask voxels at the coarsest scale (7^3, one usable voxel)
    expected, expected_scales = ref_ms_ssim(pred, ref, mask)
    got, scales = ms_ssim_masked(pred, ref, mask, device="cpu")
    assert abs(got - expected) < 1e-6
    np.testing.assert_allclose(scales, expected_scales, atol=1e-6)
    assert 0.0 < got < 1.0


def test_ms_ssim_equals_reference_phantom_small_axis():
    # 5 slices: MS-SSIM pads to 97, so it is defined where SSIM is not
    pred, ref, body = ct_like((64, 60, 5), seed=2, noise=80.0, bias=30.0)
    expected, _ = ref_ms_ssim(pred, ref, body, -1024.0, 3071.0)
    got, _ = ms_ssim_masked(pred, ref, body, -1024.0, 3071.0)
    assert abs(got - expected) < 1e-6
    same, scales = ms_ssim_masked(ref, ref, body)
    assert same == pytest.approx(1.0, abs=1e-12) and len(scales) == 5


@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value encountered")
def test_mask_vanishing_at_a_coarse_scale_gives_nan_like_the_reference():
    pred, ref, _ = ct_like((40, 37, 23), seed=3)
    mask = np.zeros(ref.shape, bool)
    mask[5:9, 5:9, 5:9] = True  # away from the centre: gone after 4 downsamplings
    expected, expected_scales = ref_ms_ssim(pred, ref, mask)
    got, scales = ms_ssim_masked(pred, ref, mask)
    assert np.isnan(expected) and np.isnan(got)
    assert np.isnan(scales[-1]) and abs(scales[0] - expected_scales[0]) < 1e-6
