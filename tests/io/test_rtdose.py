"""RTDOSE files read back with pydicom: every frame's pixel centres (by the standard's
formula from the header) land on the dose grid's voxels, and value x DoseGridScaling is the
dose there."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from medxlate.errors import OutputError, UsageError
from medxlate.io.rtdose import UINT32_MAX, write_rtdose
from medxlate.io.volume import Volume

REF_TAGS = {"FrameOfReferenceUID": "1.2.826.0.1.99.1", "StudyInstanceUID": "1.2.826.0.1.99.2",
            "SeriesInstanceUID": "1.2.826.0.1.99.3", "PatientID": "P-7",
            "PatientName": "DOE^JANE"}


def _reference():
    return Volume(np.zeros((2, 2, 2), np.float32), np.eye(4), "CT", {"dicom": dict(REF_TAGS)})


def read_back(path):
    """(dose in Gy, LPS centres) per stored voxel, (frames, rows, cols), from the header."""
    ds = pydicom.dcmread(path)
    ipp = np.asarray(ds.ImagePositionPatient, float)
    iop = np.asarray(ds.ImageOrientationPatient, float)
    row, col = iop[:3], iop[3:]
    dr, dc = (float(v) for v in ds.PixelSpacing)
    offsets = np.asarray(ds.GridFrameOffsetVector, float)
    f, r, c = np.meshgrid(np.arange(ds.NumberOfFrames), np.arange(ds.Rows),
                          np.arange(ds.Columns), indexing="ij")
    lps = (ipp + c[..., None] * dc * row + r[..., None] * dr * col
           + offsets[f][..., None] * np.cross(row, col))
    return ds, ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling), lps


@pytest.mark.parametrize("diag", [(3.0, 3.0, 3.0), (-2.0, 2.5, 4.0), (4.0, -4.0, -2.0)])
def test_geometry_and_values_round_trip(tmp_path, diag):
    rng = np.random.default_rng(3)
    shape = (7, 5, 4)
    affine = np.diag([*diag, 1.0])
    affine[:3, 3] = (-10.5, 20.25, -31.0)
    gy = rng.uniform(0, 64.0, shape).astype(np.float32)
    dose = Volume(gy, affine, "CT")
    path = write_rtdose(dose, tmp_path / "d.dcm", _reference(), plan_uid="1.2.3.9",
                        comment="reference dose")
    ds, values, lps = read_back(path)
    # each stored voxel's centre, taken into the dose grid by its affine, is a voxel index
    ijk = (lps * [-1.0, -1.0, 1.0] - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T
    assert np.abs(ijk - np.rint(ijk)).max() < 1e-6
    i, j, k = np.rint(ijk).astype(int).reshape(-1, 3).T
    assert sorted(zip(i, j, k)) == sorted(np.ndindex(*shape))     # every voxel exactly once
    scaling = float(ds.DoseGridScaling)
    assert scaling == pytest.approx(gy.max() / UINT32_MAX, rel=1e-9)
    assert np.abs(values.ravel() - gy[i, j, k]).max() <= scaling / 2 + 1e-12
    assert (ds.Modality, ds.DoseUnits, ds.DoseType, ds.DoseSummationType) == \
        ("RTDOSE", "GY", "PHYSICAL", "PLAN")
    assert ds.FrameOfReferenceUID == REF_TAGS["FrameOfReferenceUID"]
    assert ds.StudyInstanceUID == REF_TAGS["StudyInstanceUID"]
    assert ds.PatientID == "P-7"
    assert ds.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == "1.2.3.9"
    assert ds.FrameIncrementPointer == 0x3004000C
    assert float(ds.GridFrameOffsetVector[0]) == 0.0
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.2"


def test_zero_dose_and_refusals(tmp_path):
    zero = Volume(np.zeros((3, 3, 2), np.float32), np.eye(4))
    ds, values, _ = read_back(write_rtdose(zero, tmp_path / "z.dcm", _reference(), "1.2.3"))
    assert values.max() == 0.0 and float(ds.DoseGridScaling) == 1.0
    with pytest.raises(OutputError, match="exists"):
        write_rtdose(zero, tmp_path / "z.dcm", _reference(), "1.2.3")
    with pytest.raises(UsageError, match="read from DICOM"):
        write_rtdose(zero, tmp_path / "n.dcm", Volume(zero.array, np.eye(4)), "1.2.3")
    assert not (tmp_path / "n.dcm").exists()


@pytest.mark.parametrize("diag", [(3.0, 3.0, 3.0), (-2.0, 2.5, 4.0)])
def test_gdcm_reads_the_same_grid(tmp_path, diag):
    """SimpleITK (GDCM), another reader, places each voxel where the dose grid has it."""
    import SimpleITK as sitk

    affine = np.diag([*diag, 1.0])
    affine[:3, 3] = (12.0, -7.5, 40.25)
    gy = np.random.default_rng(5).uniform(0, 2.0, (6, 4, 3)).astype(np.float32)
    path = write_rtdose(Volume(gy, affine), tmp_path / "d.dcm", _reference(), "1.2.3")
    img = sitk.ReadImage(str(path))
    scaled = sitk.GetArrayFromImage(img).astype(np.float64) * float(
        pydicom.dcmread(path).DoseGridScaling)          # GDCM leaves the scaling to us
    for index in np.ndindex(*img.GetSize()):
        lps = np.asarray(img.TransformIndexToPhysicalPoint(tuple(int(v) for v in index)))
        ijk = np.linalg.solve(affine[:3, :3], lps * [-1.0, -1.0, 1.0] - affine[:3, 3])
        assert np.abs(ijk - np.rint(ijk)).max() < 1e-6
        i, j, k = np.rint(ijk).astype(int)
        assert abs(scaled[index[::-1]] - gy[i, j, k]) <= gy.max() / UINT32_MAX
