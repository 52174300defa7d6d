"""Normalisation values (docs/dataset-format.md)."""

import numpy as np
import pytest

from medxlate.intensity import (
    DEFAULT_NORMALISATION,
    denormalise,
    denormalise_ct,
    mr_params,
    normalise,
    normalise_ct,
    normalise_mr,
)

SPEC = DEFAULT_NORMALISATION


def test_ct_window_endpoints_and_clipping():
    x = normalise_ct(np.array([-2000.0, -1024.0, 0.0, 3000.0, 5000.0]), SPEC)
    assert x[0] == -1.0 and x[1] == -1.0
    assert x[3] == 1.0 and x[4] == 1.0
    assert x[2] == pytest.approx(2 * 1024 / 4024 - 1, abs=1e-6)


def test_ct_inverse_within_half_hu_after_float16():
    hu = np.linspace(-1024, 3000, 400001)
    stored = normalise_ct(hu, SPEC).astype(np.float16)
    back = denormalise_ct(stored, SPEC)
    assert back.dtype == np.float32
    # float16 steps are 2**-11 for |x| in [0.5, 1): 4024 / 2 * 2**-11 / 2 = 0.49 HU at worst
    assert np.max(np.abs(back - hu)) < 0.5
    assert denormalise_ct(np.float16(-1.0), SPEC) == -1024.0
    assert denormalise_ct(np.float16(1.0), SPEC) == 3000.0


def test_ct_custom_window_and_module_spec():
    spec = {"kind": "window", "low": -1000.0, "high": 1000.0}
    assert normalise_ct(np.array([0.0]), spec)[0] == 0.0
    assert denormalise_ct(np.array([0.5]), spec)[0] == 500.0


def test_mr_percentile_inside_mask():
    rng = np.random.default_rng(0)
    v = np.zeros((20, 20, 20), np.float32)
    mask = np.zeros(v.shape, bool)
    mask[5:15, 5:15, 5:15] = True
    v[mask] = rng.uniform(100, 200, mask.sum())
    x, params = normalise(v, "MR", SPEC, mask)
    lo, hi = np.percentile(v[mask], [0.5, 99.5])
    assert params == pytest.approx({"low": lo, "high": hi})
    assert x[~mask].max() == -1.0  # background (0) clips to the low percentile
    assert x[mask].min() == -1.0 and x[mask].max() == 1.0
    back = denormalise(x, "MR", SPEC, params)
    inside = (v >= lo) & (v <= hi) & mask
    assert np.max(np.abs(back[inside] - v[inside])) < 1e-3


def test_mr_zscore():
    spec = {"mr": {"kind": "zscore"}}
    v = np.zeros((10, 10, 10), np.float32)
    mask = np.zeros(v.shape, bool)
    mask[:5] = True
    v[:5] = np.arange(500).reshape(5, 10, 10)
    params = mr_params(v, spec, mask)
    assert params["mean"] == pytest.approx(249.5)
    x = normalise_mr(v, spec, params, mask)
    assert x[~mask].max() == 0.0 and x[~mask].min() == 0.0
    assert x[mask].mean() == pytest.approx(0.0, abs=1e-5)
    assert x[mask].std() == pytest.approx(1.0, abs=1e-5)


def test_bad_spec():
    with pytest.raises(ValueError, match="not valid for CT"):
        normalise_ct(np.zeros(1), {"kind": "zscore"})
    with pytest.raises(ValueError, match="no entry for MR"):
        normalise(np.zeros(3), "MR", {"ct": SPEC["ct"]})
