"""Pick a reader or writer from a path."""

from __future__ import annotations

from pathlib import Path

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
    if Path(path).is_dir() or name.endswith((".zip", ".dcm")):
        return "dicom"
    raise UsageError(f"{path}: unknown image format (expected .nii[.gz], .mha/.mhd, .nrrd, "
                     "a DICOM folder, .dcm or .zip)")


def read_volume(path: Path | str, modality: str = "unknown", series: str | None = None) -> Volume:
    """Read any supported image into a canonical (RAS+) float32 Volume.

    Args:
        path: NIfTI, MetaImage/NRRD file, DICOM folder, single .dcm or .zip of DICOM.
        modality: "CT", "MR" or "unknown"; DICOM files state their own.
        series: SeriesInstanceUID or 0-based index when a DICOM folder holds several.

    Raises:
        InputError: the path is missing, empty, unreadable or not a 3D image.
    """
    path = Path(path)
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

    return read_dicom(path, series=series)


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
