"""Volume <-> SimpleITK image, keeping geometry exact (RAS in medxlate, LPS in ITK).

ITK stores arrays as (z, y, x) and world coordinates in LPS; a Volume stores (x, y, z) and
RAS. The voxel->world map is the same physical map in both, so round trips are exact.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medxlate.io.volume import Volume

#: RAS <-> LPS: negate x and y.
FLIP_XY = np.diag([-1.0, -1.0, 1.0])


def to_sitk(vol: Volume | np.ndarray, affine: np.ndarray | None = None,
            pixel=sitk.sitkFloat32) -> sitk.Image:
    """A SimpleITK image with ``vol``'s array and geometry (or ``array`` + ``affine``)."""
    if isinstance(vol, Volume):
        array, affine = vol.array, vol.affine
    else:
        array = vol
    array = np.asarray(array)
    if pixel == sitk.sitkFloat32:
        array = array.astype(np.float32, copy=False)
    elif pixel == sitk.sitkUInt8:
        array = array.astype(np.uint8, copy=False)
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    lps = FLIP_XY @ affine[:3, :3]
    spacing = np.linalg.norm(lps, axis=0)
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetDirection(tuple(float(d) for d in (lps / spacing).ravel()))
    image.SetOrigin(tuple(float(o) for o in FLIP_XY @ affine[:3, 3]))
    return image


def affine_of(image: sitk.Image) -> np.ndarray:
    """The 4x4 voxel (x, y, z) -> RAS affine of a SimpleITK image."""
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = FLIP_XY @ direction @ np.diag(image.GetSpacing())
    affine[:3, 3] = FLIP_XY @ np.asarray(image.GetOrigin(), dtype=np.float64)
    return affine


def array_of(image: sitk.Image) -> np.ndarray:
    """The image's voxels as an (x, y, z) numpy array."""
    return np.ascontiguousarray(sitk.GetArrayFromImage(image).transpose(2, 1, 0))


def from_sitk(image: sitk.Image, modality: str = "unknown", meta: dict | None = None) -> Volume:
    return Volume(array_of(image).astype(np.float32), affine_of(image), modality, meta or {})


def transform_points_ras(transform: sitk.Transform, points_ras: np.ndarray) -> np.ndarray:
    """Apply an ITK transform (which works in LPS) to RAS points, shape (N, 3)."""
    lps = np.asarray(points_ras, dtype=np.float64) @ FLIP_XY
    out = np.array([transform.TransformPoint(tuple(p)) for p in lps])
    return out.reshape(-1, 3) @ FLIP_XY
