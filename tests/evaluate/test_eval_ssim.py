"""Masked SSIM (SynthRAD2023) equals scikit-image's reference computation."""

import numpy as np
import pytest
import torch
from scipy.ndimage import binary_dilation, uniform_filter

from medxlate.errors import InputError
from medxlate.evaluate.boxfilter import box_sum_3d, box_sum_valid, symmetric_pad
from medxlate.evaluate.ssim import ssim_full_map, ssim_masked
from tests.evaluate.eval_reference import ct_like, ref_ssim


def test_symmetric_pad_is_scipy_reflect_and_not_torch_reflect():
    x = torch.arange(5.0, dtype=torch.float64).reshape(1, 1, 5)
    ours = symmetric_pad(x, 3)[0, 0].tolist()
    assert ours == [2.0, 1.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 4.0, 3.0, 2.0]
    assert ours == np.pad(np.arange(5.0), 3, mode="symmetric").tolist()
    torch_reflect = torch.nn.functional.pad(x, (3, 3), mode="reflect")[0, 0].tolist()
    assert torch_reflect == [3.0, 2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 3.0, 2.0, 1.0]
    assert torch_reflect != ours


def test_padded_box_mean_equals_uniform_filter_even_on_short_axes():
    rng = np.random.default_rng(1)
    for shape in [(9, 8, 10), (7, 3, 2)]:
        a = rng.normal(size=shape)
        t = torch.from_numpy(a)
        ours = box_sum_3d(symmetric_pad(t, 3), 7).numpy() / 343
        np.testing.assert_allclose(ours, uniform_filter(a, 7), rtol=0, atol=1e-12)


def test_box_sum_valid_values():
    t = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0])
    assert box_sum_valid(t, 0, 7).tolist() == [127.0, 254.0]
    assert box_sum_valid(t, 0, 1).tolist() == t.tolist()
    with pytest.raises(ValueError):
        box_sum_valid(t, 0, 9)


@pytest.mark.parametrize("shape,seed", [((96, 80, 24), 0), ((61, 47, 13), 1)])
def test_ssim_equals_skimage_on_random_ct_volumes(shape, seed):
    rng = np.random.default_rng(seed)
    # CT-like values spanning and exceeding the clip range
    ref = rng.uniform(-1200, 3300, shape).astype(np.float32)
    pred = (ref + rng.normal(0, 300, shape)).astype(np.float32)
    mask = rng.random(shape) > 0.2
    expected, _ = ref_ssim(pred, ref, mask)
    got = ssim_masked(pred, ref, mask, device="cpu")
    assert abs(got - expected) < 1e-6
    assert 0.0 < expected < 1.0


def test_ssim_equals_skimage_on_phantom_with_ragged_mask():
    pred, ref, body = ct_like((80, 72, 30), seed=3)
    rng = np.random.default_rng(3)
    # ragged: the body with bites removed and isolated islands added, touching the border
    ragged = body & ~(rng.random(body.shape) > 0.85)
    ragged |= binary_dilation(rng.random(body.shape) > 0.995)
    ragged[:, :2, :] = True
    expected, _ = ref_ssim(pred, ref, ragged)
    got = ssim_masked(pred, ref, ragged, device="cpu")
    assert abs(got - expected) < 1e-6
    # the border voxels are excluded: a mask only within 3 voxels of the edge is unusable
    edge = np.zeros_like(body)
    edge[:3] = True
    with pytest.raises(InputError, match="border"):
        ssim_masked(pred, ref, edge)


def test_ssim_hu_range_synthrad2025_and_full_map():
    pred, ref, body = ct_like((40, 36, 20), seed=4, noise=200.0, bias=50.0)
    ref[10:20, 10:20, 5:15] = 3050.0  # between 3000 and 3071: the range matters
    expected, full = ref_ssim(pred, ref, body, -1024.0, 3071.0)
    assert abs(ssim_masked(pred, ref, body, -1024.0, 3071.0) - expected) < 1e-6
    assert abs(ssim_masked(pred, ref, body) - expected) > 1e-6
    np.testing.assert_allclose(ssim_full_map(pred, ref, body, -1024.0, 3071.0), full, atol=1e-6)


def test_ssim_on_real_ct(mridir):
    from medxlate.io import read_volume

    ct = read_volume(mridir / "ct", modality="CT")
    ref = ct.array
    rng = np.random.default_rng(5)
    pred = (ref + rng.normal(0, 80, ref.shape)).astype(np.float32)
    mask = ref > -500
    expected, _ = ref_ssim(pred, ref, mask)
    assert abs(ssim_masked(pred, ref, mask) - expected) < 1e-6


DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.mark.parametrize("device", DEVICES)
def test_devices_agree_with_skimage(device):
    pred, ref, body = ct_like((50, 44, 18), seed=6, noise=120.0)
    expected, _ = ref_ssim(pred, ref, body)
    assert abs(ssim_masked(pred, ref, body, device=device) - expected) < 1e-6


@pytest.mark.slow
def test_full_size_512x512x200_equals_skimage():
    pred, ref, body = ct_like((512, 512, 200), seed=7)
    expected, _ = ref_ssim(pred, ref, body)
    assert abs(ssim_masked(pred, ref, body) - expected) < 1e-6


def test_identical_images_give_one():
    _, ref, body = ct_like((20, 20, 20))
    assert ssim_masked(ref, ref, body) == pytest.approx(1.0, abs=1e-12)


def test_volume_thinner_than_the_window_is_a_clear_error():
    pred, ref, body = ct_like((30, 30, 6))
    with pytest.raises(InputError, match=r"at least 7 voxels.*axis 2 has 6"):
        ssim_masked(pred, ref, body)
