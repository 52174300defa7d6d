"""Geometry of synthesis: resample to the training spacing and back, restore file orientation.

The working grid keeps the input's voxel (0, 0, 0) centre and axis directions and changes
only the spacing, so both resamplings are per-axis scalings of voxel indices: exact about the
origin, and the output lands on the input grid voxel for voxel.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from medxlate.io.volume import Volume

SPACING_TOL_MM = 1e-3


def working_grid(vol: Volume, spacing_mm) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Affine and shape of the grid with ``spacing_mm`` covering the volume's extent."""
    old = np.asarray(vol.spacing)
    new = np.asarray(spacing_mm, dtype=np.float64)
    extent = (np.asarray(vol.shape) - 1) * old
    shape = tuple(int(n) for n in np.floor(extent / new + 1e-6).astype(int) + 1)
    affine = vol.affine.copy()
    affine[:3, :3] = vol.direction * new
    return affine, shape  # type: ignore[return-value]


def needs_resampling(vol: Volume, spacing_mm) -> bool:
    return spacing_mm is not None and not np.allclose(vol.spacing, spacing_mm, rtol=0,
                                                      atol=SPACING_TOL_MM)


def rescale(array: np.ndarray, scale, shape, order: int = 1) -> np.ndarray:
    """Sample ``array`` at indices ``i_out * scale`` (per axis) onto ``shape``.

    Points past the last voxel take the edge value (at most half a voxel, from rounding).
    """
    return ndimage.affine_transform(np.asarray(array, np.float32), np.asarray(scale, float),
                                    offset=0.0, output_shape=tuple(shape), order=order,
                                    mode="nearest").astype(np.float32)


def to_spacing(vol: Volume, spacing_mm, order: int = 1) -> Volume:
    """The volume resampled onto its working grid (unchanged if the spacing matches)."""
    if not needs_resampling(vol, spacing_mm):
        return vol
    affine, shape = working_grid(vol, spacing_mm)
    scale = np.asarray(spacing_mm, float) / np.asarray(vol.spacing)
    return Volume(rescale(vol.array, scale, shape, order), affine, vol.modality, dict(vol.meta))


def onto_grid(array: np.ndarray, work_affine: np.ndarray, target: Volume,
              order: int = 1) -> np.ndarray:
    """Resample an array on a working grid (same origin/directions) onto ``target``'s grid."""
    work_spacing = np.linalg.norm(work_affine[:3, :3], axis=0)
    if array.shape == target.shape and np.allclose(work_spacing, target.spacing, atol=1e-6):
        return np.asarray(array, np.float32)
    scale = np.asarray(target.spacing) / work_spacing
    return rescale(array, scale, target.shape, order)


def file_affine(path: Path) -> np.ndarray | None:
    """The voxel->RAS affine exactly as stored in a NIfTI/ITK file (None for DICOM).

    Readers return canonical (RAS+) volumes; outputs are written back in the input file's own
    axis order so that a viewer shows the same header geometry for input and output.
    """
    name = Path(path).name.lower()
    try:
        if name.endswith((".nii", ".nii.gz")):
            from medxlate.io.nifti import choose_affine

            return choose_affine(nib.load(str(path)))
        if name.endswith((".mha", ".mhd", ".nrrd", ".nhdr")):
            import SimpleITK as sitk

            reader = sitk.ImageFileReader()
            reader.SetFileName(str(path))
            reader.ReadImageInformation()
            if reader.GetDimension() < 3:
                return None
            direction = np.asarray(reader.GetDirection(), float).reshape(reader.GetDimension(),
                                                                          -1)[:3, :3]
            lps = np.eye(4)
            lps[:3, :3] = direction * np.asarray(reader.GetSpacing()[:3])
            lps[:3, 3] = reader.GetOrigin()[:3]
            return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    except (OSError, RuntimeError, ValueError, nib.filebasedimages.ImageFileError):
        # The reader accepted the file already; the output then stays in canonical order.
        return None
    return None


def restore_orientation(vol: Volume, affine: np.ndarray | None) -> Volume:
    """``vol`` (canonical) with its axes permuted/flipped back to match ``affine``'s order."""
    if affine is None:
        return vol
    transform = nib.orientations.ornt_transform(nib.orientations.io_orientation(vol.affine),
                                                nib.orientations.io_orientation(affine))
    array = nib.orientations.apply_orientation(vol.array, transform)
    out_affine = vol.affine @ nib.orientations.inv_ornt_aff(transform, vol.shape)
    if not np.allclose(out_affine, affine, atol=1e-4, rtol=0):
        return vol
    return Volume(np.ascontiguousarray(array), affine.copy(), vol.modality, dict(vol.meta))
