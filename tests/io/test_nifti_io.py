"""NIfTI: sform/qform choice as ITK makes it (checked with SimpleITK), round trips, bad files."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from medxlate.errors import InputError
from medxlate.io.nifti import which_form
from medxlate.io.readers import read_volume, write_volume
from medxlate.io.volume import Volume
from tests.io.conftest import corners

SHAPE = (6, 5, 4)
ZOOMS = (0.9, 1.3, 2.0)


def _rotation(deg: float, axis: int) -> np.ndarray:
    c, s = np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))
    i, j = [a for a in range(3) if a != axis]
    rot = np.eye(3)
    rot[i, i], rot[i, j], rot[j, i], rot[j, j] = c, -s, s, c
    return rot


def _affine(deg: float, axis: int, offset, flip=(1, 1, 1)) -> np.ndarray:
    aff = np.eye(4)
    aff[:3, :3] = _rotation(deg, axis) @ np.diag(np.multiply(ZOOMS, flip))
    aff[:3, 3] = offset
    return aff


Q_AFF = _affine(10, 2, [10.0, -20.0, 30.0])
S_AFF = _affine(-25, 0, [-5.0, 7.0, 12.0], flip=(-1, 1, 1))
SHEAR = S_AFF.copy()
SHEAR[0, 1] += 0.4


def _save(path, qaff, qcode, saff, scode):
    data = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    img = nib.Nifti1Image(data, None)
    img.header.set_zooms(ZOOMS)
    img.header.set_qform(qaff, code=qcode)
    img.header.set_sform(saff, code=scode)
    if qcode == 0:
        img.header["qform_code"] = 0
    nib.save(img, str(path))
    return path


def _itk_corners(path) -> np.ndarray:
    img = sitk.ReadImage(str(path))
    lps = np.eye(4)
    lps[:3, :3] = np.array(img.GetDirection()).reshape(3, 3) * np.array(img.GetSpacing())
    lps[:3, 3] = img.GetOrigin()
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    idx = np.array([[i, j, k, 1] for i in (0, SHAPE[0] - 1) for j in (0, SHAPE[1] - 1)
                    for k in (0, SHAPE[2] - 1)], float)
    return (idx @ ras.T)[:, :3]


def _assert_corners(ours, theirs, tol=0.01):
    distance = np.linalg.norm(ours[:, None] - theirs[None], axis=2)
    assert distance.min(axis=1).max() <= tol and distance.min(axis=0).max() <= tol


@pytest.mark.parametrize("qaff,qcode,saff,scode,expected", [
    (Q_AFF, 1, S_AFF, 1, "sform"),  # scanner sform wins even when they disagree
    (Q_AFF, 1, S_AFF, 2, "qform"),  # aligned sform that disagrees with the qform: qform
    (Q_AFF, 0, S_AFF, 2, "sform"),  # no qform: sform
    (Q_AFF, 1, S_AFF, 0, "qform"),  # no sform: qform
    (Q_AFF, 1, SHEAR, 1, "qform"),  # sheared sform: qform
    (Q_AFF, 1, Q_AFF, 4, "sform"),  # MNI sform equal to the qform: sform
    (Q_AFF, 0, S_AFF, 0, "none"),  # neither: ITK's identity LPS grid at the origin
])
def test_form_choice_matches_simpleitk(tmp_path, qaff, qcode, saff, scode, expected):
    path = _save(tmp_path / "x.nii", qaff, qcode, saff, scode)
    assert which_form(nib.load(str(path)).header) == expected
    vol = read_volume(path)
    _assert_corners(corners(vol), _itk_corners(path))
    if expected == "none":  # RAS diag(-dx, -dy, dz) with the origin at voxel 0
        _assert_corners(corners(vol), _corners_of(np.diag([-ZOOMS[0], -ZOOMS[1], ZOOMS[2], 1])))
    else:
        chosen = saff if expected == "sform" else qaff
        _assert_corners(corners(vol), _corners_of(chosen))


def _corners_of(affine):
    idx = np.array([[i, j, k, 1] for i in (0, SHAPE[0] - 1) for j in (0, SHAPE[1] - 1)
                    for k in (0, SHAPE[2] - 1)], float)
    return (idx @ affine.T)[:, :3]


def test_sheared_sform_without_qform_refused(tmp_path):
    path = _save(tmp_path / "shear.nii", Q_AFF, 0, SHEAR, 1)
    with pytest.raises(RuntimeError):
        sitk.ReadImage(str(path))  # ITK refuses it as well
    with pytest.raises(InputError, match="shear"):
        read_volume(path)


def test_sform_scales_disagreeing_with_pixdim_refused(tmp_path):
    img = nib.Nifti1Image(np.zeros(SHAPE, np.float32), None)
    img.header.set_zooms((1.0, 1.0, 1.0))
    img.header.set_sform(np.diag([2.0, 2.0, 2.0, 1.0]), code=1)
    img.header["qform_code"] = 0
    nib.save(img, str(tmp_path / "scales.nii"))
    assert sitk.ReadImage(str(tmp_path / "scales.nii")).GetSpacing() == (1.0, 1.0, 1.0)
    assert nib.load(str(tmp_path / "scales.nii")).affine[0, 0] == 2.0  # the two disagree
    with pytest.raises(InputError, match=r"sform voxel sizes \[2.0, 2.0, 2.0\] disagree"):
        read_volume(tmp_path / "scales.nii")


def test_flipped_oblique_round_trip_and_itk_agree(tmp_path):
    affine = _affine(33, 1, [-40.0, 15.5, -7.25], flip=(-1, 1, -1))
    data = np.random.default_rng(1).normal(size=SHAPE).astype(np.float32)
    vol = Volume(data, affine, "MR")
    write_volume(vol, tmp_path / "o.nii.gz")
    back = read_volume(tmp_path / "o.nii.gz")
    _assert_corners(corners(back), _corners_of(affine), tol=1e-4)
    _assert_corners(corners(back), _itk_corners(tmp_path / "o.nii.gz"), tol=1e-4)
    # canonical storage: the voxel nearest each world point keeps its value
    centre = affine @ [2, 3, 1, 1]
    ijk = np.rint(np.linalg.solve(back.affine, centre)[:3]).astype(int)
    assert back.array[tuple(ijk)] == data[2, 3, 1]
    hdr = nib.load(str(tmp_path / "o.nii.gz")).header
    assert int(hdr["sform_code"]) == 1 and int(hdr["qform_code"]) == 1
    np.testing.assert_allclose(hdr.get_sform(), hdr.get_qform(), atol=1e-4)


def test_lps_mha_from_simpleitk_equals_ras_nifti(tmp_path):
    """The same image written by SimpleITK (LPS) and nibabel (RAS) reads back identically."""
    data = np.random.default_rng(2).normal(size=SHAPE).astype(np.float32)
    img = sitk.GetImageFromArray(data.transpose(2, 1, 0))
    img.SetSpacing(ZOOMS)
    img.SetOrigin((12.0, -30.0, 5.0))  # LPS: 12 mm left, 30 mm anterior
    direction = _rotation(20, 2)
    img.SetDirection(direction.ravel().tolist())
    sitk.WriteImage(img, str(tmp_path / "lps.mha"))
    ras = np.eye(4)
    ras[:3, :3] = np.diag([-1, -1, 1]) @ direction @ np.diag(ZOOMS)
    ras[:3, 3] = (-12.0, 30.0, 5.0)
    nib.save(nib.Nifti1Image(data, ras), str(tmp_path / "ras.nii.gz"))
    a, b = read_volume(tmp_path / "lps.mha"), read_volume(tmp_path / "ras.nii.gz")
    np.testing.assert_allclose(a.affine, b.affine, atol=1e-5)
    np.testing.assert_array_equal(a.array, b.array)


def test_four_d_names_the_axis(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 3), np.float32), np.eye(4)),
             str(tmp_path / "t.nii.gz"))
    with pytest.raises(InputError, match=r"4D \(4, 4, 4, 3\) \(axis 3 has 3\)"):
        read_volume(tmp_path / "t.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 1), np.float32), np.eye(4)),
             str(tmp_path / "single.nii.gz"))
    assert read_volume(tmp_path / "single.nii.gz").shape == (4, 4, 4)


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_volume(tmp_path / "missing.nii.gz")
    (tmp_path / "empty.nii").write_bytes(b"")
    with pytest.raises(InputError, match="file is empty"):
        read_volume(tmp_path / "empty.nii")
    (tmp_path / "text.nii").write_text("hello, I am not an image\n" * 20)
    with pytest.raises(InputError, match="not a readable NIfTI"):
        read_volume(tmp_path / "text.nii")
    nib.save(nib.Nifti1Image(np.ones((30, 30, 30), np.float32), np.eye(4)),
             str(tmp_path / "full.nii.gz"))
    raw = (tmp_path / "full.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        read_volume(tmp_path / "cut.nii.gz")
    assert gzip.decompress(raw)[:4] == (348).to_bytes(4, "little")


def test_non_finite_voxels_counted(tmp_path):
    data = np.zeros(SHAPE, np.float32)
    data[0, 0, :3] = np.nan
    data[1, 1, 1] = np.inf
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / "nan.nii.gz"))
    with pytest.raises(InputError, match=r"4 of 120 voxels are not finite \(3 NaN, 1 Inf\)"):
        read_volume(tmp_path / "nan.nii.gz")
    vol = read_volume(tmp_path / "nan.nii.gz", allow_nonfinite=True)
    assert int(np.count_nonzero(~np.isfinite(vol.array))) == 4


def test_sheared_volume_not_written(tmp_path):
    from medxlate.errors import OutputError

    with pytest.raises(OutputError, match="shear"):
        write_volume(Volume(np.zeros(SHAPE, np.float32), SHEAR), tmp_path / "s.nii.gz")
    assert list(tmp_path.iterdir()) == []
