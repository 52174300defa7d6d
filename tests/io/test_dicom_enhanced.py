"""Enhanced multi-frame and compressed DICOM from pydicom-data, checked against pydicom."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medxlate.errors import InputError
from medxlate.io.dicom_read import read_dicom
from tests.io.conftest import world_matched

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _expected_affine(iop, row_col_spacing, first_ipp, step) -> np.ndarray:
    """RAS affine of array (columns, rows, frames) from DICOM attributes (PS3.3 C.7.6.2)."""
    iop = np.asarray(iop, float)
    normal = np.cross(iop[:3], iop[3:])
    lps = np.eye(4)
    lps[:3, 0] = iop[:3] * row_col_spacing[1]
    lps[:3, 1] = iop[3:] * row_col_spacing[0]
    lps[:3, 2] = normal * step
    lps[:3, 3] = first_ipp
    return LPS_TO_RAS @ lps


def test_enhanced_ct_functional_groups():
    path = get_testdata_file("eCT_Supplemental.dcm")
    ds = pydicom.dcmread(path)
    vol = read_dicom(path)
    assert vol.shape == (512, 512, 2) and vol.modality == "CT"
    shared = ds.SharedFunctionalGroupsSequence[0]
    rescale = shared.PixelValueTransformationSequence[0]
    assert float(rescale.RescaleIntercept) == -1024.0
    frames = ds.pixel_array.astype(np.float32) * np.float32(rescale.RescaleSlope) \
        + np.float32(rescale.RescaleIntercept)
    positions = [np.array(f.PlanePositionSequence[0].ImagePositionPatient, float)
                 for f in ds.PerFrameFunctionalGroupsSequence]
    iop = shared.PlaneOrientationSequence[0].ImageOrientationPatient
    normal = np.cross(np.array(iop[:3], float), np.array(iop[3:], float))
    order = np.argsort([p @ normal for p in positions])
    step = (positions[order[1]] - positions[order[0]]) @ normal
    assert step == pytest.approx(10.0)
    spacing = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
    affine = _expected_affine(iop, spacing, positions[order[0]], step)
    ref = frames[order].transpose(2, 1, 0)
    np.testing.assert_array_equal(vol.array, world_matched(ref, affine, vol.affine, vol.shape))
    np.testing.assert_allclose(vol.spacing, (spacing[1], spacing[0], 10.0), atol=1e-9)


def _with_geometry(name: str, out_path):
    """A copy of an emri_small file (no functional groups) given a known geometry.

    Frame f lies at z = 1.2 * (9 - f) mm: reversed, so the reader must sort by position.
    """
    ds = pydicom.dcmread(get_testdata_file(name))
    shared = Dataset()
    measures, orientation = Dataset(), Dataset()
    measures.PixelSpacing = [0.5, 0.75]
    measures.SliceThickness = 1.2
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PlaneOrientationSequence = Sequence([orientation])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    items = []
    for f in range(int(ds.NumberOfFrames)):
        item, position = Dataset(), Dataset()
        position.ImagePositionPatient = [-10.0, 20.0, 1.2 * (9 - f)]
        item.PlanePositionSequence = Sequence([position])
        items.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(items)
    ds.save_as(out_path)
    return out_path


def test_enhanced_mr_without_geometry_is_refused():
    with pytest.raises(InputError, match="geometry is unknown"):
        read_dicom(get_testdata_file("emri_small.dcm"))


@pytest.mark.parametrize("name", ["emri_small.dcm", "emri_small_RLE.dcm",
                                  "emri_small_jpeg_2k_lossless.dcm",
                                  "emri_small_jpeg_ls_lossless.dcm",
                                  "emri_small_big_endian.dcm"])
def test_enhanced_mr_compressed_frames(name, tmp_path):
    path = _with_geometry(name, tmp_path / name)
    vol = read_dicom(path)
    assert vol.shape == (64, 64, 10) and vol.modality == "MR"
    decoded = pydicom.dcmread(get_testdata_file(name)).pixel_array.astype(np.float32)
    reference = pydicom.dcmread(get_testdata_file("emri_small.dcm")).pixel_array
    np.testing.assert_array_equal(decoded, reference)  # lossless: same as uncompressed
    affine = _expected_affine([1, 0, 0, 0, 1, 0], (0.5, 0.75), [-10.0, 20.0, 0.0], 1.2)
    ref = decoded[::-1].transpose(2, 1, 0)  # frames bottom to top
    np.testing.assert_array_equal(vol.array, world_matched(ref, affine, vol.affine, vol.shape))
    np.testing.assert_allclose(vol.spacing, (0.75, 0.5, 1.2), atol=1e-9)
    np.testing.assert_allclose(vol.world([0, 0, 0])[2], 0.0, atol=1e-9)


@pytest.mark.parametrize("compressed,plain", [
    ("693_J2KR.dcm", "693_UNCR.dcm"),  # CT, JPEG 2000 lossless
    ("MR_small_RLE.dcm", "MR_small.dcm"),  # RLE lossless
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),  # JPEG-LS lossless
    ("MR_small_jp2klossless.dcm", "MR_small.dcm"),
])
def test_compressed_equals_uncompressed(compressed, plain):
    a, b = read_dicom(get_testdata_file(compressed)), read_dicom(get_testdata_file(plain))
    assert a.shape == b.shape and a.shape[2] == 1
    np.testing.assert_allclose(a.affine, b.affine, atol=1e-9)
    np.testing.assert_array_equal(a.array, b.array)


def test_jpeg_lossless_ct_matches_pydicom():
    """JPEG lossless (process 14, SV1) CT, rescaled to HU per slice."""
    path = get_testdata_file("bad_sequence.dcm")
    ds = pydicom.dcmread(path)
    vol = read_dicom(path)
    assert vol.modality == "CT" and vol.shape == (512, 512, 1)
    expected = ds.pixel_array.astype(np.float32) * np.float32(ds.RescaleSlope) \
        + np.float32(ds.RescaleIntercept)
    affine = _expected_affine(ds.ImageOrientationPatient, [float(v) for v in ds.PixelSpacing],
                              [float(v) for v in ds.ImagePositionPatient], vol.spacing[2])
    ref = expected.T[:, :, None]
    np.testing.assert_array_equal(vol.array, world_matched(ref, affine, vol.affine, vol.shape))
    assert vol.array.min() == float(ds.pixel_array.min()) - 1024.0
