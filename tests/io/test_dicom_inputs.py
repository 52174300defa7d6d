"""DICOM series selection and refusal of irregular stacks, built in tmp from real data."""

from __future__ import annotations

import zipfile

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from medxlate.errors import InputError, UsageError
from medxlate.io.dicom_read import list_series, read_dicom
from medxlate.io.readers import read_volume
from tests.io.conftest import copy_series


def _by_height(folder):
    """File names sorted by ImagePositionPatient z (the shared series are axial)."""
    files = sorted(folder.iterdir())
    z = [float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2])
         for f in files]
    return [files[i] for i in np.argsort(z)]


def _edit(path, **changes):
    ds = pydicom.dcmread(path)
    for key, value in changes.items():
        setattr(ds, key, value)
    ds.save_as(path)


def test_two_series_refused_and_listed(tmp_path, ct_dir, mr_dir, ct_vol, mr_vol):
    folder = copy_series(ct_dir, tmp_path / "mixed", "ct_")
    copy_series(mr_dir, folder, "mr_")
    with pytest.raises(InputError) as err:
        read_dicom(folder)
    message = str(err.value)
    assert "2 series" in message and "--series" in message
    assert ct_vol.meta["dicom"]["SeriesInstanceUID"] in message
    assert mr_vol.meta["dicom"]["SeriesInstanceUID"] in message
    assert "32 slices CT" in message and "12 slices MR" in message
    listing = list_series(folder)
    assert [(s["slices"], s["modality"]) for s in listing] in (
        [(12, "MR"), (32, "CT")], [(32, "CT"), (12, "MR")])
    ct_index = next(s["index"] for s in listing if s["modality"] == "CT")
    picked = read_dicom(folder, series=str(ct_index))
    np.testing.assert_array_equal(picked.array, ct_vol.array)
    by_uid = read_dicom(folder, series=mr_vol.meta["dicom"]["SeriesInstanceUID"])
    np.testing.assert_allclose(by_uid.affine, mr_vol.affine, atol=1e-9)
    with pytest.raises(UsageError, match="only 2 series"):
        read_dicom(folder, series="7")
    with pytest.raises(UsageError, match="no such SeriesInstanceUID"):
        read_dicom(folder, series="1.2.3.4")


def test_missing_slice_is_a_named_gap(tmp_path, ct_dir):
    middle = _by_height(ct_dir)[15].name
    folder = copy_series(ct_dir, tmp_path / "gap", skip={middle})
    with pytest.raises(InputError) as err:
        read_dicom(folder)
    message = str(err.value)
    assert "gap" in message and "1.250 mm" in message and "0.625 mm" in message
    assert "1 slice(s) missing" in message


def test_dropping_the_end_slice_is_no_gap(tmp_path, ct_dir, ct_vol):
    top = _by_height(ct_dir)[-1].name
    vol = read_dicom(copy_series(ct_dir, tmp_path / "short", skip={top}))
    assert vol.shape == (512, 512, 31)
    np.testing.assert_allclose(vol.affine, ct_vol.affine, atol=1e-9)
    np.testing.assert_array_equal(vol.array, ct_vol.array[:, :, :31])


def test_uneven_spacing_refused(tmp_path, mr_dir):
    folder = copy_series(mr_dir, tmp_path / "uneven")
    target = folder / _by_height(mr_dir)[5].name
    ipp = [float(v) for v in pydicom.dcmread(target).ImagePositionPatient]
    _edit(target, ImagePositionPatient=[ipp[0], ipp[1], ipp[2] + 0.4])
    with pytest.raises(InputError, match="uneven slice spacing"):
        read_dicom(folder)


def test_gantry_tilt_refused(tmp_path, mr_dir):
    folder = copy_series(mr_dir, tmp_path / "tilt")
    for rank, src in enumerate(_by_height(mr_dir)):
        ipp = [float(v) for v in pydicom.dcmread(src).ImagePositionPatient]
        # 2.5 mm slices, 0.2 mm forward shift per slice: a 4.6 degree tilt
        _edit(folder / src.name, ImagePositionPatient=[ipp[0], ipp[1] + 0.2 * rank, ipp[2]])
    with pytest.raises(InputError, match="gantry tilt") as err:
        read_dicom(folder)
    assert "4.57 degrees" in str(err.value)


def test_duplicate_position_refused(tmp_path, mr_dir):
    folder = copy_series(mr_dir, tmp_path / "dup")
    first = min(folder.iterdir())
    copy = folder / "copy.dcm"
    copy.write_bytes(first.read_bytes())
    _edit(copy, SOPInstanceUID=generate_uid())
    with pytest.raises(InputError, match="same position"):
        read_dicom(folder)


def test_skip_derived_and_localizer_stacks(tmp_path, mr_dir, mr_vol):
    folder = copy_series(mr_dir, tmp_path / "with_scout")
    scout = folder / "scout.dcm"
    scout.write_bytes(min(folder.iterdir()).read_bytes())
    # same series, sagittal orientation: a separate stack, and a localizer
    _edit(scout, SOPInstanceUID=generate_uid(), ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"],
          ImageOrientationPatient=[0, 1, 0, 0, 0, -1])
    with pytest.raises(InputError, match="2 series"):
        read_dicom(folder)
    vol = read_dicom(folder, skip_derived=True)
    np.testing.assert_array_equal(vol.array, mr_vol.array)
    np.testing.assert_allclose(vol.affine, mr_vol.affine, atol=1e-9)


def test_zip_and_single_file(tmp_path, mr_dir, mr_vol):
    archive = tmp_path / "mr.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(mr_dir.iterdir()):
            zf.write(f, f"study/{f.name}")
    vol = read_volume(archive)
    np.testing.assert_array_equal(vol.array, mr_vol.array)
    np.testing.assert_allclose(vol.affine, mr_vol.affine, atol=1e-9)
    lowest = _by_height(mr_dir)[0]
    single = read_volume(lowest)
    assert single.shape == (512, 512, 1)
    np.testing.assert_allclose(single.spacing, (0.5, 0.5, 2.5), atol=1e-9)
    np.testing.assert_allclose(single.affine[:3, 3], mr_vol.affine[:3, 3], atol=1e-9)
    np.testing.assert_array_equal(single.array[:, :, 0], mr_vol.array[:, :, 0])


def test_folder_without_dicom(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(InputError, match=r"no DICOM image found \(1 files looked at\)"):
        read_dicom(tmp_path)


def test_suffixless_dicom_file_and_fake_dcm(tmp_path, mr_dir, mr_vol):
    lowest = _by_height(mr_dir)[0]
    bare = tmp_path / "IM0001"
    bare.write_bytes(lowest.read_bytes())
    vol = read_volume(bare)  # recognised by the 'DICM' marker
    np.testing.assert_array_equal(vol.array[:, :, 0], mr_vol.array[:, :, 0])
    fake = tmp_path / "fake.dcm"
    fake.write_text("definitely not DICOM\n" * 10)
    with pytest.raises(InputError, match="not a DICOM image file"):
        read_volume(fake)


@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_truncated_file_in_series_refused(tmp_path, mr_dir, keep):
    folder = copy_series(mr_dir, tmp_path / "cut")
    top = folder / _by_height(mr_dir)[-1].name  # an end slice: no gap would reveal it
    raw = top.read_bytes()
    top.write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(InputError, match=top.name):
        read_dicom(folder)


@pytest.mark.parametrize("shift_mm,accepted", [(0.015, True), (0.05, False)])
def test_position_rounding_tolerance(tmp_path, mr_dir, mr_vol, shift_mm, accepted):
    """A frame within 0.02 mm of the regular grid is accepted; 0.05 mm off is refused."""
    folder = copy_series(mr_dir, tmp_path / "jitter")
    target = folder / _by_height(mr_dir)[6].name
    ipp = [float(v) for v in pydicom.dcmread(target).ImagePositionPatient]
    _edit(target, ImagePositionPatient=[ipp[0] + shift_mm, ipp[1], ipp[2] + shift_mm])
    if accepted:
        vol = read_dicom(folder)
        np.testing.assert_allclose(vol.affine, mr_vol.affine, atol=1e-9)
    else:
        with pytest.raises(InputError, match="uneven slice spacing"):
            read_dicom(folder)
