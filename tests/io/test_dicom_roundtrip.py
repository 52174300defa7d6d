"""Round trips through the DICOM writer keep geometry (0.01 mm) and HU (int16 exact)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.uid import CTImageStorage

from medxlate.errors import OutputError
from medxlate.io.dicom_read import read_dicom
from medxlate.io.dicom_write import write_dicom_series
from medxlate.io.readers import read_volume, write_volume
from medxlate.io.volume import Volume
from tests.io.conftest import corners

TOL_MM = 0.01


def _same_geometry(a: Volume, b: Volume) -> None:
    assert a.shape == b.shape
    np.testing.assert_allclose(corners(a), corners(b), atol=TOL_MM)
    np.testing.assert_allclose(a.affine, b.affine, atol=1e-4)


def test_dicom_to_nifti_to_dicom(tmp_path, ct_vol):
    write_volume(ct_vol, tmp_path / "ct.nii.gz")
    nifti = read_volume(tmp_path / "ct.nii.gz")
    _same_geometry(nifti, ct_vol)
    np.testing.assert_array_equal(nifti.array, ct_vol.array)
    files = write_dicom_series(nifti, tmp_path / "sct", reference=ct_vol)
    back = read_dicom(tmp_path / "sct")
    _same_geometry(back, ct_vol)
    np.testing.assert_array_equal(back.array, ct_vol.array)
    assert len(files) == 32


def test_nifti_to_dicom_to_nifti_oblique_float(tmp_path):
    """A flipped, oblique grid with non-integer HU: geometry kept, HU rounded exactly once."""
    rng = np.random.default_rng(0)
    hu = rng.uniform(-1200, 3000, size=(20, 16, 9)).astype(np.float32)
    hu[0, 0, 0], hu[1, 0, 0] = 40000.0, -40000.0  # outside int16: clipped
    theta = np.deg2rad(17.0)
    rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0],
                    [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([-0.8, 1.1, 2.5])  # x flipped, rotated about z
    affine[:3, 3] = [31.4, -12.7, 88.0]
    write_volume(Volume(hu, affine, "CT"), tmp_path / "in.nii.gz")
    src = read_volume(tmp_path / "in.nii.gz", modality="CT")
    write_dicom_series(src, tmp_path / "dcm")
    write_volume(read_dicom(tmp_path / "dcm"), tmp_path / "out.nii.gz")
    out = read_volume(tmp_path / "out.nii.gz")
    _same_geometry(out, src)
    expected = np.clip(np.rint(src.array), -32768, 32767)
    np.testing.assert_array_equal(out.array, expected)
    assert out.array.max() == 32767 and out.array.min() == -32768


def test_derived_series_tags(tmp_path, ct_vol, mr_vol):
    sct = ct_vol.with_array(ct_vol.array)
    sct.meta = {}
    files = write_dicom_series(sct, tmp_path / "sct", reference=mr_vol,
                               description="synthetic CT")
    headers = [pydicom.dcmread(f) for f in files]
    ref = mr_vol.meta["dicom"]
    first = headers[0]
    assert first.SOPClassUID == CTImageStorage and first.Modality == "CT"
    assert list(first.ImageType) == ["DERIVED", "SECONDARY"]
    for key in ("PatientID", "PatientName", "StudyInstanceUID", "FrameOfReferenceUID"):
        assert str(first.get(key)) == ref[key]
    assert first.SeriesInstanceUID != ref["SeriesInstanceUID"]
    assert first.ReferencedSeriesSequence[0].SeriesInstanceUID == ref["SeriesInstanceUID"]
    assert first.SeriesDescription == "synthetic CT"
    assert "medxlate" in str(first.SoftwareVersions)
    assert first.RescaleType == "HU" and float(first.RescaleSlope) == 1.0
    assert float(first.RescaleIntercept) == 0.0 and first.PixelRepresentation == 1
    assert first.pixel_array.dtype == np.int16
    assert len({h.SOPInstanceUID for h in headers}) == len(headers) == 32
    assert len({h.SeriesInstanceUID for h in headers}) == 1
    assert [int(h.InstanceNumber) for h in headers] == list(range(1, 33))
    # LPS storage as the source CT: IOP 1\0\0\0\1\0, first slice at the source's lowest IPP
    np.testing.assert_allclose([float(v) for v in first.ImageOrientationPatient],
                               [1, 0, 0, 0, 1, 0], atol=1e-9)
    np.testing.assert_allclose([float(v) for v in first.ImagePositionPatient],
                               [-100.0, -100.0, -4.75], atol=1e-6)
    np.testing.assert_allclose([float(v) for v in headers[-1].ImagePositionPatient],
                               [-100.0, -100.0, -4.75 + 31 * 0.625], atol=1e-6)
    np.testing.assert_allclose([float(v) for v in first.PixelSpacing], [0.390625] * 2)
    assert float(first.SliceThickness) == pytest.approx(0.625)


def test_standalone_series_is_labelled(tmp_path):
    vol = Volume(np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 1000,
                 np.diag([1.0, 2.0, 3.0, 1.0]), "CT")
    files = write_dicom_series(vol, tmp_path / "alone")
    a, b = pydicom.dcmread(files[0]), pydicom.dcmread(files[1])
    assert "standalone" in a.StudyDescription and a.PatientName == "MEDXLATE^STANDALONE"
    assert a.StudyInstanceUID == b.StudyInstanceUID and "ReferencedSeriesSequence" not in a
    back = read_dicom(tmp_path / "alone")
    np.testing.assert_array_equal(back.array, vol.array)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-9)


def test_non_integer_mr_keeps_contrast(tmp_path):
    values = np.linspace(0.0, 1.0, 2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    vol = Volume(values, np.eye(4), "MR")
    write_dicom_series(vol, tmp_path / "mr")
    back = read_dicom(tmp_path / "mr")
    assert back.modality == "MR"
    np.testing.assert_allclose(back.array, values, atol=1.0 / 65535)


def test_existing_series_needs_overwrite(tmp_path, mr_vol):
    small = Volume(mr_vol.array[:8, :8, :3], mr_vol.affine, "CT")
    write_dicom_series(small, tmp_path / "s")
    with pytest.raises(OutputError, match="--overwrite"):
        write_dicom_series(small, tmp_path / "s")
    before = sorted(p.name for p in (tmp_path / "s").iterdir())
    write_dicom_series(small, tmp_path / "s", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no temporary left behind


def test_writer_refusals(tmp_path):
    from medxlate.errors import InputError, UsageError

    vol = Volume(np.zeros((2, 2, 2), np.float32), np.eye(4), "CT")
    with pytest.raises(UsageError, match="no DICOM metadata"):
        write_dicom_series(vol, tmp_path / "a", reference=vol)
    values = np.zeros((2, 2, 2), np.float32)
    values[0, 0, :], values[1, 1, :] = np.nan, np.inf
    bad = vol.with_array(values)
    with pytest.raises(InputError, match="4 voxels are NaN/Inf"):
        write_dicom_series(bad, tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_unknown_modality_is_written_as_ct_in_hu(tmp_path):
    vol = Volume(np.full((2, 2, 2), 12.6, np.float32), np.eye(4), "unknown")
    files = write_dicom_series(vol, tmp_path / "u")
    ds = pydicom.dcmread(files[0])
    assert ds.Modality == "CT" and float(ds.RescaleSlope) == 1.0 and ds.RescaleType == "HU"
    np.testing.assert_array_equal(read_dicom(tmp_path / "u").array, np.full((2, 2, 2), 13.0))
