"""`medxlate convert` DICOM -> NIfTI: int16 when the values allow it, streamed slice by slice.

The real GE CT (int16 stored values, slope 1, intercept -1024, -2048 HU padding) and copies
of it with altered rescale tags.
"""

from __future__ import annotations

import tracemalloc

import nibabel as nib
import numpy as np
import pydicom
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.io import Volume, read_volume
from medxlate.io.dicom_convert import dicom_to_nifti, integer_dtype
from medxlate.io.nifti import write_nifti
from tests.io.conftest import copy_series

runner = CliRunner()


def _convert(src, dst):
    result = runner.invoke(app, ["convert", str(src), str(dst)])
    assert result.exit_code == 0, result.output
    return nib.load(str(dst))


def _stored_hu(folder):
    """Oracle from pydicom alone: {z position: stored * slope + intercept} (float64)."""
    out = {}
    for f in folder.glob("*.dcm"):
        d = pydicom.dcmread(f)
        out[round(float(d.ImagePositionPatient[2]), 3)] = (
            d.pixel_array.astype(np.float64) * float(d.RescaleSlope) + float(d.RescaleIntercept))
    return out


def test_real_ct_is_written_as_int16_with_the_same_values_and_geometry(mridir, tmp_path):
    # streamed: 32 slices of 512x512 are 32 MiB as float32; the old path peaked at ~100 MiB
    tracemalloc.start()
    try:
        dicom_to_nifti(mridir / "ct", tmp_path / "ct.nii.gz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 * 2**20, peak / 2**20
    img = nib.load(str(tmp_path / "ct.nii.gz"))
    assert img.get_data_dtype() == np.int16
    assert np.isnan(img.header["scl_slope"]) and np.isnan(img.header["scl_inter"])
    ref = read_volume(mridir / "ct")  # the float32 reader (validated against dcm2niix)
    data = np.asanyarray(img.dataobj)
    np.testing.assert_array_equal(data, ref.array)
    assert data.min() == -2048  # padding kept: convert never cleans values
    np.testing.assert_allclose(img.affine, ref.affine, atol=1e-6)
    assert img.header.get_sform(coded=True)[1] == 1 and img.header.get_qform(coded=True)[1] == 1
    # each stored slice, rescaled by pydicom, is a z-slice of the output (LPS -> RAS flips)
    by_z = _stored_hu(mridir / "ct")
    for k in (0, 17, 31):
        z = round(float((img.affine @ [0, 0, k, 1])[2]), 3)
        np.testing.assert_array_equal(data[:, :, k], by_z[z].T[::-1, ::-1])


def _four_slices(mridir, folder):
    """A copy of four of the real CT's slices (contiguous: the first four by position)."""
    files = sorted((mridir / "ct").glob("*.dcm"),
                   key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True)
                                       .ImagePositionPatient[2]))
    return copy_series(mridir / "ct", folder, skip={f.name for f in files[4:]})


def test_non_integer_slope_gives_float32(mridir, tmp_path):
    folder = _four_slices(mridir, tmp_path / "s")
    for f in folder.glob("*.dcm"):
        d = pydicom.dcmread(f)
        d.RescaleSlope = "0.5"
        d.save_as(f)
    img = _convert(folder, tmp_path / "o.nii.gz")
    assert img.get_data_dtype() == np.float32
    by_z = _stored_hu(folder)
    k = 2
    z = round(float((img.affine @ [0, 0, k, 1])[2]), 3)
    np.testing.assert_array_equal(np.asanyarray(img.dataobj)[:, :, k], by_z[z].T[::-1, ::-1])


def test_values_beyond_int16_fall_back_to_float32(mridir, tmp_path):
    folder = _four_slices(mridir, tmp_path / "s")
    files = sorted(folder.glob("*.dcm"))
    d = pydicom.dcmread(files[2])
    d.RescaleIntercept = "31000"  # one slice reaches 31000 + its maximum > 32767
    d.save_as(files[2])
    img = _convert(folder, tmp_path / "o.nii.gz")
    assert img.get_data_dtype() == np.float32
    data = np.asanyarray(img.dataobj)
    assert data.max() == 31000 + int(pydicom.dcmread(files[2]).pixel_array.max())
    assert not (tmp_path / "o.nii.gz.part").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.nii.gz", "s"]


def test_integer_dtype_and_nifti_to_nifti(tmp_path):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 10
    assert integer_dtype(a) is np.int16
    assert integer_dtype(a + 0.5) is np.float32
    assert integer_dtype(a * 4000) is np.float32  # -40000 is outside int16
    vol = Volume(a, np.diag([1.0, 2.0, 3.0, 1.0]), "CT")
    write_nifti(vol, tmp_path / "f.nii.gz")
    img = _convert(tmp_path / "f.nii.gz", tmp_path / "i.nii.gz")
    assert img.get_data_dtype() == np.int16
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), a)


def test_sagittal_series_is_read_whole_and_still_int16(mridir, tmp_path):
    """Slices along x (sagittal): the slice axis is not the canonical third axis, so the
    series is read whole; values and geometry equal read_volume's, as int16."""
    folder = _four_slices(mridir, tmp_path / "s")
    for k, f in enumerate(sorted(folder.glob("*.dcm"))):
        d = pydicom.dcmread(f)
        d.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
        d.ImagePositionPatient = [10.0 + 2.0 * k, -100.0, 100.0]
        d.save_as(f)
    img = _convert(folder, tmp_path / "o.nii.gz")
    ref = read_volume(folder)
    assert img.get_data_dtype() == np.int16 and img.shape == ref.shape == (4, 512, 512)
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), ref.array)
    np.testing.assert_allclose(img.affine, ref.affine, atol=1e-6)
