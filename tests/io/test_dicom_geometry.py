"""Geometry and values of the real CT and MR series against dcm2niix and SimpleITK.

File names in the shared data are shuffled on purpose: slice order must come from
ImagePositionPatient. Each reference tool's own reader gives the expected answer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from tests.io.conftest import corners, world_matched

TOL_MM = 0.01
SERIES = ["ct", "mr_t2"]


def _dcm2niix() -> str | None:
    beside = Path(sys.executable).parent / "dcm2niix"
    return str(beside) if beside.exists() else shutil.which("dcm2niix")


def _corner_world(affine: np.ndarray, shape) -> np.ndarray:
    idx = np.array([[i, j, k, 1] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1)
                    for k in (0, shape[2] - 1)], dtype=float)
    return (idx @ affine.T)[:, :3]


def _assert_same_corners(ours: np.ndarray, theirs: np.ndarray) -> None:
    distance = np.linalg.norm(ours[:, None, :] - theirs[None, :, :], axis=2)
    assert distance.min(axis=1).max() <= TOL_MM
    assert distance.min(axis=0).max() <= TOL_MM


@pytest.fixture(scope="module")
def dcm2niix_outputs(mridir, tmp_path_factory) -> dict[str, Path]:
    exe = _dcm2niix()
    if exe is None:
        pytest.skip("dcm2niix binary not found (install the 'test' extra)")
    out = tmp_path_factory.mktemp("dcm2niix")
    result = {}
    for name in SERIES:
        subprocess.run([exe, "-z", "n", "-b", "n", "-o", str(out), "-f", name,
                        str(mridir / name)], check=True, capture_output=True)
        result[name] = out / f"{name}.nii"
    return result


@pytest.mark.parametrize("name", SERIES)
def test_corners_and_values_match_dcm2niix(name, dcm2niix_outputs, ct_vol, mr_vol):
    vol = ct_vol if name == "ct" else mr_vol
    img = nib.load(str(dcm2niix_outputs[name]))
    ref = np.asanyarray(img.dataobj).astype(np.float32)
    assert ref.size == vol.array.size
    _assert_same_corners(corners(vol), _corner_world(img.affine, ref.shape))
    matched = world_matched(ref, img.affine, vol.affine, vol.shape)
    np.testing.assert_array_equal(vol.array, matched)


@pytest.mark.parametrize("name", SERIES)
def test_corners_and_values_match_simpleitk(name, mridir, ct_vol, mr_vol):
    vol = ct_vol if name == "ct" else mr_vol
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(mridir / name)))
    img = reader.Execute()
    lps = np.eye(4)
    lps[:3, :3] = np.array(img.GetDirection()).reshape(3, 3) * np.array(img.GetSpacing())
    lps[:3, 3] = img.GetOrigin()
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    ref = sitk.GetArrayFromImage(img).transpose(2, 1, 0).astype(np.float32)
    _assert_same_corners(corners(vol), _corner_world(ras, ref.shape))
    np.testing.assert_array_equal(vol.array, world_matched(ref, ras, vol.affine, vol.shape))


def test_known_ct_geometry_and_hu(ct_vol):
    """Values read off the headers: 512x512x32, 0.390625 mm pixels, 0.625 mm slices, HU."""
    assert ct_vol.modality == "CT"
    assert ct_vol.shape == (512, 512, 32)
    np.testing.assert_allclose(ct_vol.spacing, (0.390625, 0.390625, 0.625), atol=1e-9)
    assert ct_vol.orientation == "RAS"
    # IPP of the lowest slice is (-100, -100, -4.75) LPS; RAS voxel (0,0,0) is the
    # right-posterior-inferior corner: x = +100 - 511 * 0.390625, y = +100 - 511 * 0.390625.
    np.testing.assert_allclose(ct_vol.origin, (-99.609375, -99.609375, -4.75), atol=1e-6)
    assert ct_vol.array.min() == -2048.0  # GE padding: stored -1024 with intercept -1024
    assert -1100 < float(np.median(ct_vol.array[:, :, 16])) < 100
    assert ct_vol.meta["dicom"]["Modality"] == "CT"
    for key in ("StudyInstanceUID", "FrameOfReferenceUID", "SeriesInstanceUID", "PatientID",
                "SOPClassUID", "Manufacturer"):
        assert ct_vol.meta["dicom"][key]
    assert json.loads(json.dumps(ct_vol.meta)) == ct_vol.meta  # JSON-able, for manifests
    assert ct_vol.meta["dicom"]["SOPClassUID"] == "1.2.840.10008.5.1.4.1.1.2"
