"""Pick a reader or writer from a path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medxlate.errors import InputError, UsageError
from medxlate.io.nifti import read_nifti, write_nifti
from medxlate.io.volume import Volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def format_of(path: Path) -> str:
    """'nifti', 'itk' (MetaImage/NRRD) or 'dicom' from a path's name or kind."""
    name = Path(path).name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith((".mha", ".mhd", ".nrrd", ".nhdr")):
        return "itk"
    if Path(path).is_dir() or name.endswith((".zip", ".dcm")) or _has_dicom_preamble(path):
        return "dicom"
    raise UsageError(f"{path}: unknown image format (expected .nii[.gz], .mha/.mhd, .nrrd, "
                     "a DICOM folder, .dcm or .zip)")


def _has_dicom_preamble(path: Path) -> bool:
    """True for a file with the 'DICM' marker at byte 128 (DICOM files without suffix)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def read_volume(path: Path | str, modality: str = "unknown", series: str | None = None,
                skip_derived: bool = False, allow_nonfinite: bool = False) -> Volume:
    """Read any supported image into a canonical (RAS+) float32 Volume.

    Args:
        path: NIfTI, MetaImage/NRRD file, DICOM folder, single .dcm or .zip of DICOM.
        modality: "CT", "MR" or "unknown"; DICOM files state their own.
        series: SeriesInstanceUID or 0-based index when a DICOM folder holds several.
        skip_derived: DICOM only: ignore derived images, localizers and scouts.
        allow_nonfinite: accept NaN/Inf voxels (``medxlate info`` does, to count them);
            by default they are refused, because every later step would spread them.

    Raises:
        InputError: the path is missing, empty, unreadable, not a 3D image, or holds
            NaN/Inf voxels (with their count) and ``allow_nonfinite`` is False.
        UsageError: the format is unknown, or ``series`` names no series.
    """
    vol = _read(Path(path), modality, series, skip_derived)
    if not allow_nonfinite:
        bad = int(vol.array.size - np.count_nonzero(np.isfinite(vol.array)))
        if bad:
            n_nan = int(np.count_nonzero(np.isnan(vol.array)))
            raise InputError(f"{path}: {bad} of {vol.array.size} voxels are not finite "
                             f"({n_nan} NaN, {bad - n_nan} Inf); fix or mask them first")
    return vol


def _read(path: Path, modality: str, series: str | None, skip_derived: bool) -> Volume:
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    fmt = format_of(path)
    if fmt == "nifti":
        return read_nifti(path, modality)
    if fmt == "itk":
        from medxlate.io.itk import read_itk

        return read_itk(path, modality)
    from medxlate.io.dicom_read import read_dicom

    return read_dicom(path, series=series, skip_derived=skip_derived, modality=modality)


def write_volume(vol: Volume, path: Path | str, overwrite: bool = False, **kwargs) -> None:
    """Write a Volume; the format follows the path (a folder or no suffix means DICOM).

    Extra keyword arguments go to the DICOM writer (e.g. ``reference``, ``description``).
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return write_nifti(vol, path, overwrite)
    if name.endswith((".mha", ".mhd", ".nrrd", ".nhdr")):
        from medxlate.io.itk import write_itk

        return write_itk(vol, path, overwrite)
    if path.suffix == "" or path.is_dir():
        from medxlate.io.dicom_write import write_dicom_series

        return write_dicom_series(vol, path, overwrite=overwrite, **kwargs)
    raise UsageError(f"{path}: cannot tell the output format from the name (use .nii.gz, .mha, "
                     ".nrrd, or a folder name for a DICOM series)")
