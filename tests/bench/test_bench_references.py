"""Reference rows on constructed volumes with known answers (hand-computed oracles)."""

from __future__ import annotations

import numpy as np
import pytest
from bench_helpers import bench_on, held_out, write_dataset

from medxlate.bench.references import fit_map

# Non-monotone, as T1 -> HU is: the darkest and a bright MR value are both bone.
F = {100: 1000.0, 300: -900.0, 500: 40.0, 700: 1500.0, 900: -100.0}


def slabs(shape=(20, 20, 20), start=2, order=(100, 300, 500, 700, 900)):
    """MR: 3-voxel slabs along x inside the box [start, start+15)^3, 0 outside; CT = F(MR)
    inside, -1024 outside; mask = the box."""
    mr = np.zeros(shape, np.float32)
    mask = np.zeros(shape, bool)
    box = slice(start, start + 15)
    mask[box, box, box] = True
    for i, value in enumerate(order):
        mr[start + 3 * i: start + 3 * i + 3, box, box] = value
    ct = np.full(shape, -1024.0, np.float32)
    for value, hu in F.items():
        ct[mr == value] = hu
    return mr, ct, mask


@pytest.fixture()
def exact_bench(tmp_path):
    mr, ct, mask = slabs()
    dataset = write_dataset(tmp_path / "ds", [{"mr": mr, "ct": ct, "mask": mask,
                                               "mr_norm": {"low": 100.0, "high": 900.0}}])
    tmr, tct, tmask = slabs(order=(900, 100, 700, 300, 500))   # another arrangement
    test = held_out(tmp_path / "test", "t-0", tmr, tct, tmask)
    return bench_on(dataset, [test], tmp_path / "W")


def test_intensity_map_of_an_exact_function_scores_zero(exact_bench):
    rows = {r["label"]: r for r in exact_bench.reference_rows("mr->ct")}
    imap = rows["intensity-map"]["metrics"]
    assert imap["mae"] == pytest.approx(0.0, abs=1e-3)
    assert imap["ssim"] == pytest.approx(1.0, abs=1e-6)
    # the constant guess on the same data: median of the five values (equal counts) = 40 HU,
    # MAE = mean |F - 40| = (960 + 940 + 0 + 1460 + 140) / 5
    assert rows["constant"]["metrics"]["mae"] == pytest.approx(700.0, abs=1e-3)


def test_intensity_map_ct_is_air_outside_the_input_body(exact_bench):
    """Synthesize writes -1024 HU outside the input's body mask; so does the intensity map, so
    that a dose plan sees air around the body (the MR there is 0, which the map alone would
    send to its darkest bin: 1000 HU of bone)."""
    from medxlate.io.readers import read_volume

    exact_bench.reference_rows("mr->ct")
    pred = read_volume(exact_bench.work / "references" / "mri2ct" / "intensity-map"
                       / "t-0.nii.gz").array
    mr, ct, mask = slabs(order=(900, 100, 700, 300, 500))
    box = np.zeros(mask.shape, bool)      # the body box [2, 17)^3 grown by one voxel: the
    box[1:18, 1:18, 1:18] = True          # input's mask may take a voxel of the rim
    assert (~box).sum() == 3087 and np.all(pred[~box] == -1024.0)
    assert np.allclose(pred[mask], ct[mask], atol=1e-3)


def test_constant_row_is_the_training_body_median(tmp_path):
    shape = (16, 16, 16)
    mask = np.zeros(shape, bool)
    mask.reshape(-1)[:3 * 1000] = True                 # 3000 training body voxels
    ct = np.full(shape, -1024.0, np.float32)
    ct[mask] = np.tile([10.0, 40.0, 70.0], 1000)       # median 40 HU
    mr = np.where(mask, 500.0, 0.0).astype(np.float32)
    dataset = write_dataset(tmp_path / "ds", [{"mr": mr, "ct": ct, "mask": mask,
                                               "mr_norm": {"low": 0.0, "high": 1000.0}}])
    tmask = np.zeros(shape, bool)
    tmask[2:14, 2:14, 2:14] = True
    tct = np.full(shape, -1024.0, np.float32)
    tct[2:8, 2:14, 2:14] = 0.0                         # half the body at 0 HU,
    tct[8:14, 2:14, 2:14] = 100.0                      # half at 100 HU
    tmr = np.where(tmask, 400.0, 0.0).astype(np.float32)
    test = held_out(tmp_path / "test", "t-0", tmr, tct, tmask)
    rows = {r["label"]: r for r in bench_on(dataset, [test], tmp_path / "W")
            .reference_rows("mr->ct")}
    m = rows["constant"]["metrics"]
    assert m["mae"] == pytest.approx(50.0, abs=1e-4)   # (40 + 60) / 2
    assert m["me"] == pytest.approx(-10.0, abs=1e-4)   # 40 - mean(0, 100)
    assert "40 HU" in rows["constant"]["what"]


@pytest.mark.parametrize(("pattern", "expected"), [
    # 0/100 HU alternating along x at 1 mm: the 2 mm grid keeps the even (0 HU) voxels only,
    # and the way back interpolates 0 everywhere: half the voxels are off by 100 HU.
    (lambda x: 100.0 * (x % 2), 50.0),
    # A ramp of 10 HU/mm survives linear interpolation exactly, except the last x voxel
    # (index 15 maps to 7.5 on the 8-voxel grid, which takes the edge value 140 instead of
    # 150): 10 HU on 1 of 16 columns.
    (lambda x: 10.0 * x, 10.0 / 16),
])
def test_spacing_floor_of_a_known_volume(tmp_path, pattern, expected):
    shape = (16, 16, 16)
    x = np.arange(16, dtype=np.float32)[:, None, None]
    ct = np.broadcast_to(pattern(x), shape).astype(np.float32)
    mask = np.ones(shape, bool)
    dataset = write_dataset(tmp_path / "ds", [{"mr": np.full(shape, 500.0), "ct": ct,
                                               "mask": mask, "mr_norm": {"low": 0.0,
                                                                         "high": 1000.0}}])
    test = held_out(tmp_path / "test", "t-0", np.full(shape, 500.0), ct, mask)
    bench = bench_on(dataset, [test], tmp_path / "W")
    row = bench.floor_row("mr->ct", (2.0, 2.0, 2.0))
    assert row["label"] == "floor-2mm"
    assert row["metrics"]["mae"] == pytest.approx(expected, abs=1e-4)
    # the subject's own grid is its own floor: nothing is lost
    assert bench.floor_row("mr->ct", None)["metrics"]["mae"] == 0.0


def _brute_force_medians(x, y, lo, hi, bins):
    width = (hi - lo) / bins
    out = []
    for b in range(bins):
        left, right = lo + b * width, lo + (b + 1) * width
        inside = [yy for xx, yy in zip(x, y) if left <= xx < right or (b == bins - 1 and xx == hi)]
        out.append(float(np.median(inside)) if inside else None)
    return out


def test_intensity_map_medians_match_a_brute_force_loop():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, 2000)
    x[:5] = [-1.0, 1.0, 0.0, 0.5, -0.5]
    y = np.round(rng.normal(0, 300, 2000))
    fitted = fit_map(x, y, bins=16)
    expected = _brute_force_medians(list(x), list(y), x.min(), x.max(), 16)
    assert all(e is not None for e in expected)
    np.testing.assert_allclose(fitted.medians, expected)
    np.testing.assert_allclose(fitted.apply(x[:5]), [expected[0], expected[-1], expected[8],
                                                     expected[12], expected[4]])


def test_intensity_map_empty_bins_take_the_nearest_filled_bin():
    fitted = fit_map(np.array([0.0, 0.05, 0.95, 1.0]), np.array([1.0, 3.0, 7.0, 9.0]), bins=10)
    assert list(fitted.medians) == [2.0] * 5 + [8.0] * 5


def test_ct_to_mr_rows_are_scored_on_normalised_mr(exact_bench):
    """CT -> MR: the slabs' CT values are distinct, so MR is an exact function of CT; the
    target is normalised MR (percentiles 100 / 900 -> -1 / 1 for training and held-out)."""
    rows = {r["label"]: r for r in exact_bench.reference_rows("ct->mr")}
    assert rows["intensity-map"]["metrics"]["mae"] == pytest.approx(0.0, abs=1e-4)
    # median normalised training MR = 0 (five equal slabs at -1, -0.5, 0, 0.5, 1):
    # MAE = (1 + 0.5 + 0 + 0.5 + 1) / 5
    assert rows["constant"]["metrics"]["mae"] == pytest.approx(0.6, abs=1e-4)
    assert exact_bench.floor_row("ct->mr", None)["metrics"]["mae"] == 0.0
