"""NIfTI-1/2 reading and writing with explicit sform/qform handling."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from medxlate.errors import InputError, OutputError
from medxlate.io.atomic import atomic_path
from medxlate.io.volume import Volume

SCANNER_ANAT = 1


def _orthonormal_columns(m3: np.ndarray, tol: float = 1e-4) -> bool:
    norms = np.linalg.norm(m3, axis=0)
    if np.any(norms == 0):
        return False
    r = m3 / norms
    return bool(np.allclose(r @ r.T, np.eye(3), atol=tol))


def _very_similar(sform: np.ndarray, qform: np.ndarray, tol: float = 1e-4) -> bool:
    """Same rotation, scales, offset and bottom row.

    ITK compares the SVD factors of the two 3x3 blocks; singular vectors have arbitrary
    signs, so we test what that comparison means: ``S Q^-1`` is the identity.
    """
    ws = np.linalg.svd(sform[:3, :3], compute_uv=False)
    wq = np.linalg.svd(qform[:3, :3], compute_uv=False)
    return bool(np.allclose(sform[:3, :3] @ np.linalg.inv(qform[:3, :3]), np.eye(3), atol=tol)
                and np.allclose(ws, wq, atol=tol)
                and np.allclose(sform[:3, 3], qform[:3, 3], atol=tol)
                and np.allclose(sform[3], qform[3], atol=tol))


def which_form(header) -> str:
    """'sform', 'qform' or 'none': the matrix ITK's NiftiImageIO would use.

    ITK (SetImageIOOrientationFromNIfTI, ITK >= 5.3) prefers the sform when it has no
    shear and (a) the qform code is 0, or (b) the sform code is 1 (scanner), or (c) both are
    set and the two matrices agree (SVD comparison); also when both matrices are equal
    element by element. Otherwise the qform when its code is set. With both codes 0 there
    is no orientation ('none'). A sheared sform with no qform has no orthonormal reading:
    ITK refuses it and so do we (InputError).
    """
    scode, qcode = int(header["sform_code"]), int(header["qform_code"])
    if scode == 0 and qcode == 0:
        return "none"
    sform = header.get_sform() if scode > 0 else np.zeros((4, 4))
    qform = header.get_qform() if qcode > 0 else np.diag([*header.get_zooms()[:3], 1.0])
    prefer = bool(np.allclose(sform[:3, :3], qform[:3, :3], atol=1e-5, rtol=0)
                  and np.abs(sform[:, 3] - qform[:, 3]).sum() <= 1e-7
                  and np.abs(sform[3] - qform[3]).sum() <= 1e-7)
    if scode > 0 and abs(np.linalg.det(sform[:3, :3])) > 0 and _orthonormal_columns(sform[:3, :3]):
        if qcode == 0 or scode == SCANNER_ANAT:
            prefer = True
        else:
            prefer = _very_similar(sform, qform)
    if prefer:
        return "sform"
    if qcode > 0:
        return "qform"
    raise InputError("the NIfTI sform has shear or non-orthogonal axes and there is no qform: "
                     "no orthonormal orientation to use (ITK refuses such files too)")


def choose_affine(img: nib.Nifti1Image) -> np.ndarray:
    """The voxel->RAS affine the way ITK's NiftiImageIO picks it (see :func:`which_form`).

    Like ITK, voxel sizes come from pixdim and directions from the chosen matrix's
    normalised columns. When the sform's column lengths disagree with pixdim by more than
    1e-3 mm, ITK (pixdim) and nibabel/FSL (sform) would place voxels differently: such a
    header is refused (InputError) rather than guessed. With neither form set, ITK uses an
    identity LPS direction and origin 0, i.e. RAS diag(-dx, -dy, dz).
    """
    header = img.header
    zooms = np.abs(np.asarray(header.get_zooms()[:3], dtype=np.float64))
    zooms[zooms == 0] = 1.0
    form = which_form(header)
    if form == "none":
        return np.diag([-zooms[0], -zooms[1], zooms[2], 1.0])
    matrix = np.asarray(header.get_sform() if form == "sform" else header.get_qform(), np.float64)
    lengths = np.linalg.norm(matrix[:3, :3], axis=0)
    if form == "sform" and np.any(np.abs(lengths - zooms) > 1e-3):
        raise InputError(f"sform voxel sizes {np.round(lengths, 4).tolist()} disagree with pixdim "
                         f"{np.round(zooms, 4).tolist()}: tools would place voxels differently; "
                         "fix the header first")
    affine = np.eye(4)
    affine[:3, :3] = matrix[:3, :3] / np.linalg.norm(matrix[:3, :3], axis=0) * zooms
    affine[:3, 3] = matrix[:3, 3]
    return affine


def read_nifti(path: Path, modality: str = "unknown") -> Volume:
    """Read a 3D NIfTI file into a canonical (RAS+) Volume."""
    path = Path(path)
    try:
        img = nib.load(str(path))
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            raise InputError(f"{path}: not a NIfTI image")
        data = np.asanyarray(img.dataobj)
    except InputError:
        raise
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: truncated or corrupt compressed NIfTI ({exc})") from exc
    except (nib.filebasedimages.ImageFileError, ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable NIfTI file ({exc})") from exc
    data = squeeze_to_3d(data, path)
    try:
        affine = choose_affine(img)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
    array = data.astype(np.float32, copy=False)
    meta = {"source": str(path), "format": "nifti", "nifti_form": which_form(img.header)}
    vol = Volume(array, affine, modality, meta)
    return vol.canonical()


def squeeze_to_3d(data: np.ndarray, path: Path) -> np.ndarray:
    """Drop trailing singleton axes; refuse anything that is not 3D, naming the axis."""
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        raise InputError(f"{path}: image is 2D {data.shape}; a 3D volume is required")
    if data.ndim != 3:
        extra = ", ".join(f"axis {i} has {n}" for i, n in enumerate(data.shape) if i >= 3)
        raise InputError(
            f"{path}: image is {data.ndim}D {tuple(data.shape)} ({extra}); a 3D volume is "
            "required: extract one volume first"
        )
    return data


def write_nifti(vol: Volume, path: Path, overwrite: bool = False, dtype=np.float32) -> None:
    """Write a Volume as NIfTI with sform and qform both set (code 1, scanner) and equal.

    Raises:
        OutputError: the affine has shear, which the qform cannot hold (ITK would read the
            qform and move voxels), or the file cannot be written.
    """
    if not _orthonormal_columns(np.asarray(vol.affine)[:3, :3]):
        raise OutputError(f"{path}: the volume's affine has shear; NIfTI cannot store it "
                          "so that every reader agrees (resample to an orthogonal grid first)")
    img = nib.Nifti1Image(np.asarray(vol.array, dtype=dtype), vol.affine)
    img.header.set_sform(vol.affine, code=1)
    img.header.set_qform(vol.affine, code=1)
    img.header.set_xyzt_units("mm")
    with atomic_path(path, overwrite) as tmp:
        nib.save(img, str(tmp))
