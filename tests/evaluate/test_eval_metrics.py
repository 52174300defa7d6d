"""MAE, ME, PSNR, NMSE and per-tissue/per-label MAE on known values and against skimage."""

import numpy as np
import pytest

from medxlate.errors import InputError
from medxlate.evaluate.metrics import MetricConfig, image_metrics, point_metrics
from tests.evaluate.eval_reference import ct_like, ref_psnr, ref_ssim


def test_constant_offset_inside_mask():
    pred, ref, body = ct_like((30, 28, 20), noise=0.0)
    pred = np.where(body, ref + 10.0, ref - 500.0).astype(np.float32)  # outside: ignored
    m, details = image_metrics(pred, ref, body, MetricConfig(device="cpu"))
    assert m["mae"] == pytest.approx(10.0, abs=1e-4)
    assert m["me"] == pytest.approx(10.0, abs=1e-4)
    assert m["mae_air"] != m["mae_air"]  # no air inside the body: NaN
    assert m["mae_soft_tissue"] == pytest.approx(10.0, abs=1e-4)
    assert m["mae_bone"] == pytest.approx(10.0, abs=1e-4)
    assert m["psnr"] == pytest.approx(10 * np.log10(4024.0 ** 2 / 100.0), abs=1e-4)
    r = ref[body].astype(np.float64)
    assert m["nmse"] == pytest.approx(100.0 * r.size / np.sum(r * r), rel=1e-5)
    assert list(m)[:6] == ["mae", "me", "psnr", "ssim", "ms_ssim", "nmse"]
    assert len(details["ms_ssim_scales"]) == 5


def test_signed_bias_and_tissue_split_with_custom_thresholds():
    ref = np.array([-1000.0, -300.0, 100.0, 300.0, 1500.0] * 4, np.float32).reshape(4, 5, 1)
    pred = ref + np.array([-50.0, 20.0, 20.0, -40.0, -40.0] * 4, np.float32).reshape(4, 5, 1)
    mask = np.ones(ref.shape, bool)
    m = point_metrics(pred, ref, mask, MetricConfig())
    assert m["me"] == pytest.approx((-50 + 20 + 20 - 40 - 40) / 5)
    assert (m["mae_air"], m["mae_soft_tissue"], m["mae_bone"]) == (50.0, 20.0, 40.0)
    m = point_metrics(pred, ref, mask, MetricConfig(tissue_thresholds=(-200.0, 1000.0)))
    assert (m["mae_air"], m["mae_soft_tissue"], m["mae_bone"]) == (35.0, 30.0, 40.0)


def test_psnr_equals_skimage_with_clipping():
    rng = np.random.default_rng(0)
    shape = (50, 40, 30)
    ref = rng.uniform(-1500, 3500, shape).astype(np.float32)
    pred = (ref + rng.normal(0, 150, shape)).astype(np.float32)
    mask = rng.random(shape) > 0.4
    for low, high in ((-1024.0, 3000.0), (-1024.0, 3071.0)):
        got = point_metrics(pred, ref, mask, MetricConfig(low, high))["psnr"]
        assert abs(got - ref_psnr(pred, ref, mask, low, high)) < 1e-4


def test_per_label_mae():
    ref = np.zeros((8, 8, 8), np.float32)
    labels = np.zeros(ref.shape, np.int32)
    labels[:4] = 1
    labels[4:6] = 7
    pred = ref.copy()
    pred[labels == 1] = 5.0
    pred[labels == 7] = -12.0
    m = point_metrics(pred, ref, np.ones(ref.shape, bool), MetricConfig(), labels)
    assert m["mae_label_1"] == 5.0 and m["mae_label_7"] == 12.0 and "mae_label_0" not in m


def test_image_metrics_ssim_matches_reference_and_errors():
    pred, ref, body = ct_like((40, 40, 16), seed=1)
    m, _ = image_metrics(pred, ref, body, MetricConfig(device="cpu"))
    assert abs(m["ssim"] - ref_ssim(pred, ref, body)[0]) < 1e-6
    assert m["psnr"] == pytest.approx(ref_psnr(pred, ref, body), abs=1e-4)
    with pytest.raises(InputError, match="empty"):
        point_metrics(pred, ref, np.zeros_like(body), MetricConfig())
    with pytest.raises(InputError, match="shape"):
        image_metrics(pred[:-1], ref, body, MetricConfig())
    assert point_metrics(ref, ref, body, MetricConfig())["psnr"] == float("inf")
