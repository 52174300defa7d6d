"""The dose evaluation's own parts, checked against hand values (no dose engine needed)."""

import math
from pathlib import Path

import numpy as np
import pytest

from medxlate.errors import InputError, UsageError
from medxlate.evaluate.dose.calibration import DEFAULT_TABLE, engine_hu, lookup, read_table
from medxlate.evaluate.dose.grid import engine_grid, from_sitk, lps_to_ras_index, to_sitk
from medxlate.evaluate.dose.metrics import dose_differences, dvh_points, r80
from medxlate.evaluate.dose.settings import parse_beams, parse_prescription, parse_target
from medxlate.evaluate.dose.target import check_inside, sphere_mask
from medxlate.io import Volume


@pytest.mark.parametrize("text, expected", [("60Gy/30fx", (60.0, 30)),
                                            ("70 Gy / 35 fractions", (70.0, 35)),
                                            ("8gy", (8.0, 1))])
def test_prescription(text, expected):
    assert parse_prescription(text) == expected


@pytest.mark.parametrize("text", ["60", "60/30", "0Gy/30fx", "60Gy/0fx", "sixty Gy"])
def test_bad_prescription(text):
    with pytest.raises(UsageError, match="--prescription"):
        parse_prescription(text)


@pytest.mark.parametrize("text", ["sphere:1,2,3", "sphere:1,2,3,0", "label:0", "label:x"])
def test_bad_target(text):
    with pytest.raises(UsageError, match="--target"):
        parse_target(text)


def test_rtstruct_target_syntax(tmp_path):
    rs = tmp_path / "RS:1.dcm"     # a colon in the file name: the split follows the file
    rs.write_bytes(b"")
    assert parse_target(f"{rs}:PTV:boost") == {"kind": "rtstruct", "path": rs,
                                               "roi": "PTV:boost"}
    assert parse_target("missing.dcm:GTV") == {"kind": "rtstruct",
                                               "path": Path("missing.dcm"), "roi": "GTV"}
    assert parse_target(str(rs)) == rs                 # an existing path as a whole: a mask
    # a mask image path with a colon, not there (yet): still a mask path, not an RTSTRUCT
    assert parse_target("masks/a:b.nii.gz") == Path("masks/a:b.nii.gz")
    for text in ("RS.dcm:", ":PTV"):
        with pytest.raises(UsageError, match="RTSTRUCT:ROI_NAME"):
            parse_target(text)


@pytest.mark.parametrize("text", ["", "0,0", "360", "-10,90", "a,b"])
def test_bad_beams(text):
    with pytest.raises(UsageError, match="--beams"):
        parse_beams(text)


def test_matrad_table_values():
    # matRad's table by hand: 0 HU is water, 350 HU -> 1.199, halfway 0..100 HU -> 1.0475
    assert lookup(np.array([0.0, 350.0, 50.0, -2000.0, 5000.0]), DEFAULT_TABLE).tolist() == \
        pytest.approx([1.0, 1.199, 1.0475, 0.001, 2.505])


def test_a_user_table_reaches_the_engine_exactly(tmp_path):
    csv = tmp_path / "cal.csv"
    csv.write_text("hu,value\n# a steeper scanner\n-1000,0.0\n0,1.0\n1000,1.6\n3000,2.4\n")
    table = read_table(csv)
    hu = np.linspace(-1024, 2900, 997)
    # the engine applies its own (matRad) table to what medxlate hands it
    engine_values = np.interp(engine_hu(hu, table), DEFAULT_TABLE[:, 0], DEFAULT_TABLE[:, 1])
    hand = np.interp(hu, [-1000, 0, 1000, 3000], [0.0, 1.0, 1.6, 2.4])
    inside = hand >= 0.001  # below the engine table's floor (air) both are air
    assert np.abs(engine_values[inside] - hand[inside]).max() < 1e-4


@pytest.mark.parametrize("text, words", [("0,1\n", "at least two rows"),
                                         ("0,1\n-10,2\n", "HU must increase"),
                                         ("0,1\n10,0.5\n", "must not decrease"),
                                         ("a;b\n1;2\n", "two columns")])
def test_bad_calibration(tmp_path, text, words):
    (tmp_path / "c.csv").write_text(text)
    with pytest.raises(InputError, match=words):
        read_table(tmp_path / "c.csv")


def test_r80_hand_values():
    # the last sample at 80 % of the maximum is sample 5 (1e-12 below: crossed just before it)
    profile = np.array([20, 60, 100, 95, 100, 80 - 1e-12, 60, 40, 20, 0.0])
    assert r80(profile, 1.0) == pytest.approx(5.0, abs=1e-9)
    ripple = np.array([50, 100, 70, 90, 90, 45, 0.0])  # dips below 80 % inside, not distal
    assert r80(ripple, 2.0) == pytest.approx(2.0 * (4 + (90 - 80) / (90 - 45)))
    assert math.isnan(r80(np.array([0.0, 50, 100]), 1.0))  # never falls: no range


def test_dose_figures_hand_values():
    ref = np.zeros((10, 1, 1))
    ref[:5] = 60.0  # high-dose half
    pred = ref.copy()
    pred[0] += 6.0  # +10 % of 60 Gy in one high-dose voxel
    pred[9] += 1.2  # +2 % in one low-dose voxel
    body = np.ones(ref.shape, bool)
    got = dose_differences(pred, ref, body, body, 60.0)
    assert got["dose_mae_body"] == pytest.approx((10 + 2) / 10)
    assert got["dose_mae_high"] == pytest.approx(10 / 5)
    values = np.arange(1, 1001, dtype=float)
    d98, d95, d2, mean = dvh_points(values, np.ones(values.shape, bool))
    assert (d98, d95, d2, mean) == pytest.approx((20.98, 50.95, 980.02, 500.5))


def test_sitk_round_trip_and_lps_points():
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    affine[:3, 3] = [-10.0, 4.0, 7.0]
    grid = Volume(np.zeros((6, 5, 4), np.float32), affine)
    a = np.random.default_rng(0).random(grid.shape)
    img = to_sitk(a, grid)
    assert np.array_equal(from_sitk(img), a)
    # the sitk image's physical point of every voxel is the RAS world point with x, y negated
    ijk = (4, 1, 3)
    lps_index = (grid.shape[0] - 1 - ijk[0], grid.shape[1] - 1 - ijk[1], ijk[2])
    lps = np.array(img.TransformIndexToPhysicalPoint(lps_index))
    assert np.allclose(lps * [-1, -1, 1], grid.world(np.array(ijk, float)))
    assert np.allclose(lps_to_ras_index(grid, lps[None]), [ijk])
    assert img.GetPixel(lps_index) == a[ijk]


def test_engine_grid_keeps_or_covers_the_reference():
    ref = Volume(np.zeros((10, 10, 10), np.float32), np.diag([2.5, 2.5, 2.5, 1.0]))
    assert engine_grid(ref, 2.0).same_grid(ref)  # already coarse enough: unchanged
    fine = Volume(np.zeros((30, 20, 10), np.float32), np.diag([1.0, 1.0, 2.0, 1.0]))
    g = engine_grid(fine, 2.0)
    assert g.shape == (15, 10, 10) and g.spacing == (2.0, 2.0, 2.0)
    assert np.allclose(g.world(np.array([7.0, 4.5, 4.5])), fine.world(np.array([14.5, 9.5, 4.5])))


def test_target_inside_the_body():
    ref = Volume(np.zeros((21, 21, 21), np.float32), np.eye(4))
    target = sphere_mask(ref, (10.0, 10.0, 10.0), 3.0)
    assert target.sum() == 123  # integer points within radius 3 (OEIS A000605)
    body = np.ones(ref.shape, bool)
    check_inside(target, body, "s")
    body[:10] = False  # half the target leaves the body
    with pytest.raises(InputError, match="outside the body"):
        check_inside(target, body, "s")


def test_rtstruct_of_each_cohort_subject(tmp_path):
    from medxlate.evaluate.dose.target import rtstruct_file

    (tmp_path / "s1.dcm").write_bytes(b"")
    (tmp_path / "s2").mkdir()
    (tmp_path / "s2" / "RS.1.2.3.dcm").write_bytes(b"")
    (tmp_path / "s3").mkdir()
    for name in ("a.dcm", "b.dcm"):
        (tmp_path / "s3" / name).write_bytes(b"")
    assert rtstruct_file(tmp_path, "s1") == tmp_path / "s1.dcm"
    assert rtstruct_file(tmp_path, "s2") == tmp_path / "s2" / "RS.1.2.3.dcm"
    assert rtstruct_file(tmp_path / "s1.dcm", "any") == tmp_path / "s1.dcm"   # one file: all
    for sid in ("s3", "s4"):                     # two candidates, or none: refused
        with pytest.raises(InputError, match=f"no RTSTRUCT {sid}.dcm"):
            rtstruct_file(tmp_path, sid)
