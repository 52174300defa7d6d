"""CT padding outside the reconstruction circle is outside the field of view, never data.

Real GE CT (PixelPaddingValue -1024 stored = -2048 HU) and constructed cases where a
padding circle cuts through the body.
"""

import json

import nibabel as nib
import numpy as np
import pytest
from preprocess_synthetic import FAST, write_pair
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.io import Volume, read_volume, write_volume
from medxlate.preprocess.ct_padding import clean_ct, padding_mask
from medxlate.preprocess.resample import field_of_view


def test_padding_rules_on_a_constructed_array():
    values = np.array([-3024.0, -2048.0, -1600.0, -1200.0, -1030.0, -1024.0, 0.0, 1500.0])
    vol = Volume(values.reshape(1, 1, -1).astype(np.float32), np.eye(4), "CT")
    # without a header: only values below -1500 HU are padding
    assert padding_mask(vol).ravel().tolist() == [True, True, True, False, False, False,
                                                  False, False]
    # a header range [-1250, -1150] HU adds -1200; clipping maps everything to >= -1024
    vol.meta["padding_hu"] = [-1250.0, -1150.0]
    clean, pad = clean_ct(vol)
    assert pad.ravel().tolist() == [True, True, True, True, False, False, False, False]
    assert clean.array.ravel().tolist() == [-1024.0] * 6 + [0.0, 1500.0]
    # a header that pads with air (-1024 HU) would make lungs "outside": not trusted
    vol.meta["padding_hu"] = [-1024.0, -1024.0]
    assert not padding_mask(vol)[0, 0, 5]


def test_field_of_view_excludes_voxels_interpolated_from_padding():
    # 1 mm grid, padding in x = 0..2; target grid shifted by half a voxel along x
    invalid = np.zeros((8, 3, 3), bool)
    invalid[:3] = True
    vol = Volume(np.zeros((8, 3, 3), np.float32), np.eye(4), "CT")
    target = np.eye(4)
    target[0, 3] = 0.5
    fov = field_of_view(vol, target, (7, 3, 3), invalid=invalid)
    # target x = 0.5 + i: it mixes x = 2 (padding) and 3 for i = 2; i = 3 .. 6 are clean
    assert fov[:, 1, 1].tolist() == [False, False, False, True, True, True, True]
    assert field_of_view(vol, target, (7, 3, 3))[:, 1, 1].all()


def test_real_ge_ct_padding(mridir):
    import pydicom

    files = sorted((mridir / "ct").glob("*.dcm"))
    raw = [pydicom.dcmread(f) for f in files]
    # oracle from the files alone: stored values equal to PixelPaddingValue, per slice
    n_padding = sum(int((d.pixel_array == d.PixelPaddingValue).sum()) for d in raw)
    assert raw[0].PixelPaddingValue == -1024 and float(raw[0].RescaleIntercept) == -1024.0
    ct = read_volume(mridir / "ct", modality="CT")
    assert ct.meta["padding_hu"] == [-2048.0, -2048.0]
    clean, pad = clean_ct(ct)
    assert int(pad.sum()) == n_padding == 1784704
    assert clean.array.min() == -1024.0 and ct.array.min() == -2048.0  # raw values kept


def _circle_ct(folder, radius_mm: float) -> int:
    """Replace the pair's CT outside an axial circle (centre x = y = 7 mm) with -2048 HU."""
    ct = read_volume(folder / "ct.nii.gz")
    i, j = np.meshgrid(np.arange(ct.shape[0]), np.arange(ct.shape[1]), indexing="ij")
    world = ct.affine[:2, :2] @ np.stack([i.ravel(), j.ravel()]) + ct.affine[:2, 3:4]
    outside = (np.hypot(world[0] - 7.0, world[1] - 7.0) > radius_mm).reshape(i.shape)
    ct.array[outside] = -2048.0
    write_volume(ct, folder / "ct.nii.gz", overwrite=True)
    return int(outside.sum()) * ct.shape[2]


def test_preprocess_keeps_padding_out_of_the_dataset(tmp_path):
    """The circle cuts through the body: no dataset voxel may be padding or mixed with it."""
    write_pair(tmp_path / "s")
    n_pad = _circle_ct(tmp_path / "s", radius_mm=70.0)
    out = tmp_path / "ds"
    result = CliRunner().invoke(app, ["preprocess", "--mri", str(tmp_path / "s" / "mr.nii.gz"),
                                      "--ct", str(tmp_path / "s" / "ct.nii.gz"), "-o", str(out),
                                      "--id", "p", *FAST, "--skip", "register",
                                      "--skip", "contours"])
    assert result.exit_code == 0, result.output
    ct = nib.load(out / "subjects" / "p" / "ct.nii.gz").get_fdata()
    mask = nib.load(out / "subjects" / "p" / "mask.nii.gz").get_fdata() > 0
    assert ct.min() >= -1024.0  # clipped to the window floor everywhere
    assert np.median(ct[mask]) > -500  # the body is still there
    record = json.loads((out / "dataset.json").read_text())["subjects"][0]
    assert record["inputs"]["ct"]["padding_voxels"] == n_pad
    # every mask voxel lies inside the circle (no registration: CT world = MR world), and
    # none of them is interpolated from a padding voxel (CT grid 4 x 4 mm: the circle's
    # outermost clean cells end at least half a voxel diagonal inside it)
    affine = np.array(record["affine"])
    world = np.argwhere(mask) @ affine[:3, :3].T + affine[:3, 3]
    radius = np.hypot(world[:, 0] - 7.0, world[:, 1] - 7.0)
    assert radius.max() < 70.0
    ct_in = read_volume(tmp_path / "s" / "ct.nii.gz")
    clean = ct_in.array > -1500
    ijk = (world - ct_in.affine[:3, 3]) @ np.linalg.inv(ct_in.affine[:3, :3]).T
    lo = np.floor(ijk).astype(int)
    for corner in np.ndindex(2, 2, 2):  # the 8 voxels linear interpolation reads
        idx = np.clip(lo + corner, 0, np.array(ct_in.shape) - 1)
        assert clean[idx[:, 0], idx[:, 1], idx[:, 2]].all()


def test_evaluate_does_not_score_reference_padding(tmp_path):
    rng = np.random.default_rng(0)
    ref = rng.normal(40.0, 20.0, (12, 12, 8)).astype(np.float32)
    ref[:3] = -2048.0  # padding inside the (whole-image) mask
    pred = ref + 10.0
    pred[:3] = 0.0  # a model would put tissue-like values there
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    write_volume(Volume(ref, aff, "CT"), tmp_path / "ref.nii.gz")
    write_volume(Volume(pred, aff, "CT"), tmp_path / "pred.nii.gz")
    write_volume(Volume(np.ones_like(ref), aff, "unknown"), tmp_path / "mask.nii.gz")
    res = CliRunner().invoke(app, ["evaluate", "--pred", str(tmp_path / "pred.nii.gz"),
                                   "--ref", str(tmp_path / "ref.nii.gz"), "--mask",
                                   str(tmp_path / "mask.nii.gz"), "--out",
                                   str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    subject = json.loads((tmp_path / "r.json").read_text())["subjects"][0]
    assert subject["n_mask_voxels"] == 9 * 12 * 8
    assert subject["metrics"]["mae"] == pytest.approx(10.0, abs=1e-4)
    assert any("padding" in w for w in subject.get("warnings", []))
