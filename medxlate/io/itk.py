"""MetaImage (.mha/.mhd) and NRRD (.nrrd/.nhdr) through SimpleITK.

ITK stores geometry in LPS (+x Left, +y Posterior, +z Superior); medxlate's affines are
RAS. The two differ by ``diag(-1, -1, 1)`` applied on the world side, here and nowhere else.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from medxlate.errors import InputError, OutputError
from medxlate.io.atomic import atomic_path, check_writable
from medxlate.io.volume import Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
DETACHED = (".mhd", ".nhdr")


def affine_from_itk(spacing, origin, direction) -> np.ndarray:
    """RAS voxel->world affine from ITK's LPS spacing, origin and row-major direction."""
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(direction, np.float64).reshape(3, 3) * np.asarray(spacing)
    lps[:3, 3] = origin
    return LPS_TO_RAS @ lps


def itk_geometry(affine: np.ndarray) -> tuple[list[float], list[float], list[float]]:
    """ITK spacing, origin and row-major direction (LPS) from a RAS affine."""
    lps = LPS_TO_RAS @ np.asarray(affine, np.float64)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    direction = lps[:3, :3] / spacing
    return spacing.tolist(), lps[:3, 3].tolist(), direction.ravel().tolist()


def read_itk(path: Path | str, modality: str = "unknown") -> Volume:
    """Read a 3D scalar MetaImage/NRRD file into a canonical (RAS+) Volume."""
    import SimpleITK as sitk

    path = Path(path)
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        raise InputError(f"{path}: not a readable MetaImage/NRRD file ({first})") from exc
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path}: {img.GetNumberOfComponentsPerPixel()} components per voxel; "
                         "a scalar image is required")
    size = img.GetSize()
    if img.GetDimension() != 3:
        extra = ", ".join(f"axis {i} has {n}" for i, n in enumerate(size) if i >= 3)
        raise InputError(f"{path}: image is {img.GetDimension()}D {size}"
                         f"{' (' + extra + ')' if extra else ''}; a 3D volume is required")
    array = sitk.GetArrayFromImage(img).transpose(2, 1, 0).astype(np.float32)
    affine = affine_from_itk(img.GetSpacing(), img.GetOrigin(), img.GetDirection())
    vol = Volume(np.ascontiguousarray(array), affine, modality,
                 {"source": str(path), "format": "itk"})
    return vol.canonical()


def _to_image(vol: Volume):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(vol.array.transpose(2, 1, 0)))
    spacing, origin, direction = itk_geometry(vol.affine)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(direction)
    return img


def write_itk(vol: Volume, path: Path | str, overwrite: bool = False) -> None:
    """Write a Volume as float32 MetaImage/NRRD (compressed), atomically.

    Detached formats (.mhd/.nhdr) are written in a temporary folder beside the target, the
    data file moved first and the header last, so the header never points at a missing file.
    """
    import SimpleITK as sitk

    path = Path(path)
    img = _to_image(vol)
    if path.name.lower().endswith(DETACHED):
        return _write_detached(img, path, overwrite)
    with atomic_path(path, overwrite) as tmp:
        try:
            sitk.WriteImage(img, str(tmp), True)
        except RuntimeError as exc:
            raise OutputError(f"{path}: SimpleITK could not write it ({exc})") from exc


def _write_detached(img, path: Path, overwrite: bool) -> None:
    import SimpleITK as sitk

    check_writable(path, overwrite)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        sitk.WriteImage(img, str(staging / path.name), True)
        files = sorted(staging.iterdir(), key=lambda f: f.name == path.name)  # header last
        for produced in files:
            check_writable(path.parent / produced.name, overwrite)
        for produced in files:
            os.replace(produced, path.parent / produced.name)
    except RuntimeError as exc:
        raise OutputError(f"{path}: SimpleITK could not write it ({exc})") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
