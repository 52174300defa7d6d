"""`medxlate info` and `medxlate convert` through CliRunner: values, formats, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.io.readers import read_volume
from tests.io.conftest import copy_series

runner = CliRunner()


@pytest.fixture(scope="module")
def ct_dir(mridir):
    return mridir / "ct"


@pytest.fixture(scope="module")
def mr_dir(mridir):
    return mridir / "mr_t2"


@pytest.fixture(scope="module")
def mr_vol(mr_dir):
    return read_volume(mr_dir)


def _one_error_line(result, code: int, *words: str) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("medxlate: error: ") and "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


def _nifti(path, data=None, affine=None):
    data = np.arange(60, dtype=np.float32).reshape(3, 4, 5) if data is None else data
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 2.0, 3.0, 1.0]) if affine is None else affine),
             str(path))
    return path


def test_info_json_values(tmp_path):
    result = runner.invoke(app, ["info", str(_nifti(tmp_path / "a.nii.gz")), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["shape"] == [3, 4, 5] and summary["spacing_mm"] == [1.0, 2.0, 3.0]
    assert summary["orientation"] == "RAS" and summary["min"] == 0.0 and summary["max"] == 59.0
    assert summary["percentiles"]["p50"] == pytest.approx(29.5)
    assert summary["non_finite_voxels"] == 0


def test_info_table_on_dicom(ct_dir):
    result = runner.invoke(app, ["info", str(ct_dir)])
    assert result.exit_code == 0, result.output
    assert "512 x 512 x 32" in result.stdout and "RAS" in result.stdout
    assert "0.390625 x 0.390625 x 0.625" in result.stdout


def test_info_counts_non_finite_but_convert_refuses(tmp_path):
    data = np.zeros((3, 4, 5), np.float32)
    data[0, 0, 0], data[1, 1, 1] = np.nan, -np.inf
    path = _nifti(tmp_path / "nan.nii.gz", data)
    result = runner.invoke(app, ["info", str(path), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["non_finite_voxels"] == 2
    result = runner.invoke(app, ["convert", str(path), str(tmp_path / "o.nii.gz")])
    _one_error_line(result, 3, "2 of 60 voxels are not finite (1 NaN, 1 Inf)")
    assert not (tmp_path / "o.nii.gz").exists()


@pytest.mark.parametrize("out", ["c.nii", "c.mha", "c.nrrd", "c.mhd", "dicom_out"])
def test_convert_from_dicom_to_every_format_and_back(tmp_path, mr_dir, mr_vol, out):
    result = runner.invoke(app, ["convert", str(mr_dir), str(tmp_path / out)])
    assert result.exit_code == 0, result.output
    assert "512 x 512 x 12" in result.stdout
    back = read_volume(tmp_path / out)
    np.testing.assert_allclose(back.affine, mr_vol.affine, atol=1e-4)
    np.testing.assert_array_equal(back.array, mr_vol.array)
    if out == "dicom_out":  # a derived series of the same patient and study
        assert back.meta["dicom"]["StudyInstanceUID"] == mr_vol.meta["dicom"]["StudyInstanceUID"]
        assert back.meta["dicom"]["SeriesDescription"] == "medxlate converted"


def test_series_and_skip_derived_options(tmp_path, ct_dir, mr_dir):
    folder = copy_series(ct_dir, tmp_path / "mixed", "ct_")
    copy_series(mr_dir, folder, "mr_")
    _one_error_line(runner.invoke(app, ["info", str(folder)]), 3, "2 series", "--series")
    listing = json.loads(runner.invoke(app, ["info", str(folder), "--list-series", "--json"])
                         .stdout)
    assert sorted(s["slices"] for s in listing) == [12, 32]
    mr_index = next(s["index"] for s in listing if s["modality"] == "MR")
    result = runner.invoke(app, ["info", str(folder), "--series", str(mr_index), "--json",
                                 "--skip-derived"])
    assert result.exit_code == 0 and json.loads(result.stdout)["shape"] == [512, 512, 12]
    _one_error_line(runner.invoke(app, ["info", str(folder), "--series", "9"]), 2,
                    "only 2 series")


def test_missing_slice_via_cli(tmp_path, ct_dir):
    names = sorted(p.name for p in ct_dir.iterdir())
    folder = copy_series(ct_dir, tmp_path / "gap")
    z = {n: float(pydicom.dcmread(folder / n, stop_before_pixels=True).ImagePositionPatient[2])
         for n in names}
    (folder / sorted(names, key=z.get)[10]).unlink()
    _one_error_line(runner.invoke(app, ["info", str(folder)]), 3, "gap", "1 slice(s) missing")


def test_bad_inputs_each_one_line(tmp_path):
    missing = runner.invoke(app, ["info", str(tmp_path / "nope.nii.gz")])
    _one_error_line(missing, 3, "no such file")
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    _one_error_line(runner.invoke(app, ["info", str(tmp_path / "empty.nii.gz")]), 3, "empty")
    (tmp_path / "text.nii").write_text("just text\n" * 50)
    _one_error_line(runner.invoke(app, ["info", str(tmp_path / "text.nii")]), 3,
                    "not a readable NIfTI")
    raw = _nifti(tmp_path / "full.nii.gz", np.ones((20, 20, 20), np.float32)).read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(raw[: len(raw) // 2])
    _one_error_line(runner.invoke(app, ["info", str(tmp_path / "cut.nii.gz")]), 3, "truncated")
    _nifti(tmp_path / "t4.nii.gz", np.zeros((3, 3, 3, 4), np.float32))
    _one_error_line(runner.invoke(app, ["info", str(tmp_path / "t4.nii.gz")]), 3,
                    "axis 3 has 4", "3D volume is required")


def test_output_errors(tmp_path):
    src = _nifti(tmp_path / "a.nii.gz")
    (tmp_path / "b.nii.gz").write_bytes(b"keep me")
    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "b.nii.gz")])
    _one_error_line(result, 4, "exists", "--overwrite")
    assert (tmp_path / "b.nii.gz").read_bytes() == b"keep me"
    ok = runner.invoke(app, ["convert", str(src), str(tmp_path / "b.nii.gz"), "--overwrite"])
    assert ok.exit_code == 0 and read_volume(tmp_path / "b.nii.gz").shape == (3, 4, 5)
    # a "folder" that is a regular file cannot hold outputs (works as root too)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    result = runner.invoke(app, ["convert", str(src), str(blocker / "out.nii.gz")])
    _one_error_line(result, 4, "not a folder")


def test_read_only_folder(tmp_path):
    import os

    src = _nifti(tmp_path / "a.nii.gz")
    if os.geteuid() == 0:
        # permission bits do not stop root; /proc refuses new files to everyone
        result = runner.invoke(app, ["convert", str(src), "/proc/medxlate-test/o.nii.gz"])
        _one_error_line(result, 4, "cannot create output folder")
        assert not Path("/proc/medxlate-test").exists()
        return
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = runner.invoke(app, ["convert", str(src), str(locked / "o.nii.gz")])
        _one_error_line(result, 4, "not writable")
    finally:
        locked.chmod(0o700)


def test_convert_usage_error(tmp_path):
    src = _nifti(tmp_path / "a.nii.gz")
    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "o.nii"), "--modality", "PET"])
    _one_error_line(result, 2, "--modality PET")
    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "o.png")])
    _one_error_line(result, 2, "cannot tell the output format")


def test_malformed_dicom_values_do_not_clutter_stderr():
    from pydicom.data import get_testdata_file

    result = runner.invoke(app, ["info", get_testdata_file("bad_sequence.dcm"), "--json"])
    assert result.exit_code == 0 and result.stderr == ""
    summary = json.loads(result.stdout)
    assert summary["modality"] == "CT" and summary["shape"] == [512, 512, 1]
    assert summary["series_uid"].startswith("dbf60361")
