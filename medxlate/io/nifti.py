"""NIfTI-1/2 reading and writing with explicit sform/qform handling."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from medxlate.errors import InputError
from medxlate.io.atomic import atomic_path
from medxlate.io.volume import Volume


def choose_affine(img: nib.Nifti1Image) -> np.ndarray:
    """The voxel->RAS affine the way ITK's NiftiImageIO picks it.

    sform when its code is set (it can hold shears and is what scanners/converters fill),
    else qform when its code is set, else the pixdim-only fallback.
    """
    header = img.header
    sform, sform_code = header.get_sform(coded=True)
    qform, qform_code = header.get_qform(coded=True)
    if sform is not None and sform_code > 0:
        return np.asarray(sform, dtype=np.float64)
    if qform is not None and qform_code > 0:
        return np.asarray(qform, dtype=np.float64)
    return np.asarray(header.get_base_affine(), dtype=np.float64)


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
    array = data.astype(np.float32, copy=False)
    vol = Volume(array, choose_affine(img), modality, {"source": str(path), "format": "nifti"})
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
    """Write a Volume as NIfTI with sform and qform both set (code 1, scanner) and equal."""
    img = nib.Nifti1Image(np.asarray(vol.array, dtype=dtype), vol.affine)
    img.header.set_sform(vol.affine, code=1)
    img.header.set_qform(vol.affine, code=1)
    img.header.set_xyzt_units("mm")
    with atomic_path(path, overwrite) as tmp:
        nib.save(img, str(tmp))
