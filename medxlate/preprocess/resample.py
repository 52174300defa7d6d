"""Step 4: resample MR and the registered CT onto one target grid in a single interpolation.

The target grid covers the MR's field of view with the MR's axis directions and the target
spacing, centred on the MR's centre. The CT goes through the registration transform and the
grid change at once (one interpolation, not two).

Example:
    >>> import numpy as np
    >>> from medxlate.io import Volume
    >>> v = Volume(np.zeros((10, 10, 4), np.float32), np.diag([2.0, 2.0, 5.0, 1.0]))
    >>> affine, shape = target_grid(v, (1.0, 1.0, 2.5))
    >>> shape, affine[:3, 3].tolist()
    ((20, 20, 8), [-0.5, -0.5, -1.25])
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medxlate.io.volume import Volume
from medxlate.preprocess.itk_bridge import FLIP_XY, from_sitk, to_sitk

INTERPOLATORS = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor,
                 "bspline": sitk.sitkBSpline}


def target_grid(ref: Volume, spacing_mm=None) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Affine and shape of ``ref``'s field of view sampled at ``spacing_mm`` (None: as is)."""
    if spacing_mm is None:
        return ref.affine.copy(), ref.shape
    old = np.asarray(ref.spacing)
    new = np.asarray(spacing_mm, dtype=np.float64)
    shape = tuple(max(1, round(n * s / t)) for n, s, t in zip(ref.shape, old, new))
    direction = ref.direction
    centre = ref.world((np.asarray(ref.shape) - 1) / 2.0)
    affine = np.eye(4)
    affine[:3, :3] = direction * new
    affine[:3, 3] = centre - affine[:3, :3] @ ((np.asarray(shape) - 1) / 2.0)
    return affine, shape  # type: ignore[return-value]


def resample(vol: Volume, affine: np.ndarray, shape, transform: sitk.Transform | None = None,
             interpolation: str = "linear", default: float = 0.0) -> Volume:
    """``vol`` sampled on the grid (``affine``, ``shape``).

    Args:
        transform: ITK transform from grid points to ``vol`` points (LPS), e.g. the CT->MR
            registration; None for the identity.
        interpolation: "linear" (images), "nearest" (masks) or "bspline".
        default: value outside ``vol`` (-1024 for CT, 0 for MR and masks).
    """
    lps = FLIP_XY @ affine[:3, :3]
    spacing = np.linalg.norm(lps, axis=0)
    out = sitk.Resample(to_sitk(vol), [int(n) for n in shape],
                        transform if transform is not None else sitk.Transform(),
                        INTERPOLATORS[interpolation], tuple(FLIP_XY @ affine[:3, 3]),
                        tuple(spacing), tuple((lps / spacing).ravel()), float(default),
                        sitk.sitkFloat32)
    result = from_sitk(out, vol.modality, dict(vol.meta))
    result.affine = np.asarray(affine, dtype=np.float64).copy()  # exact, no float32 round trip
    return result


def field_of_view(vol: Volume, affine: np.ndarray, shape,
                  transform: sitk.Transform | None = None,
                  invalid: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of grid voxels whose centre falls inside ``vol``'s field of view.

    ``invalid`` (on ``vol``'s grid, e.g. CT padding outside the reconstruction circle) marks
    voxels that are not data: a grid voxel whose linear interpolation touches any of them is
    outside the field of view too.
    """
    ones = vol.with_array(np.ones(vol.shape, np.float32))
    inside = resample(ones, affine, shape, transform, "nearest", 0.0).array > 0.5
    if invalid is not None and invalid.any():
        valid = vol.with_array((~invalid).astype(np.float32))
        inside &= resample(valid, affine, shape, transform, "linear", 1.0).array >= 1.0 - 1e-4
    return inside
