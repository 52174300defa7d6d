"""The engine's grid: axis-aligned, isotropic, covering the reference; RAS <-> pyRadPlan's LPS.

pyRadPlan takes SimpleITK images in LPS world millimetres and, like matRad, assumes an
identity direction. The reference is resampled onto an axis-aligned RAS grid of the chosen
spacing (or used as it is when it already is one and no finer), and arrays cross to the engine
with their first two axes reversed (RAS+ -> LPS+), nothing else.

Example:
    >>> import numpy as np
    >>> from medxlate.io import Volume
    >>> ref = Volume(np.zeros((10, 10, 5), np.float32), np.diag([1.0, 1.0, 2.0, 1.0]))
    >>> engine_grid(ref, 2.0).shape, engine_grid(ref, 2.0).spacing
    ((5, 5, 5), (2.0, 2.0, 2.0))
    >>> a = np.arange(8.0).reshape(2, 2, 2)
    >>> g = Volume(a, np.eye(4))
    >>> bool((from_sitk(to_sitk(a, g)) == a).all())
    True
"""

from __future__ import annotations

import numpy as np

from medxlate.io import Volume


def _axis_aligned(vol: Volume) -> bool:
    return bool(np.allclose(vol.direction, np.eye(3), atol=1e-6))


def engine_grid(ref: Volume, spacing_mm: float) -> Volume:
    """An empty axis-aligned RAS grid of isotropic ``spacing_mm`` covering ``ref``.

    The reference's own grid is kept when it is axis-aligned, isotropic and no finer.
    """
    sp = np.asarray(ref.spacing)
    if _axis_aligned(ref) and np.allclose(sp, sp[0], atol=1e-4) and sp[0] >= spacing_mm - 1e-4:
        return Volume(np.zeros(ref.shape, np.float32), ref.affine.copy(), "CT")
    corners = np.array([[a, b, c] for a in (-0.5, ref.shape[0] - 0.5)
                        for b in (-0.5, ref.shape[1] - 0.5) for c in (-0.5, ref.shape[2] - 0.5)])
    world = ref.world(corners)
    lo, hi = world.min(0), world.max(0)
    shape = tuple(int(n) for n in np.maximum(np.floor((hi - lo) / spacing_mm + 1e-6), 1))
    affine = np.diag([spacing_mm] * 3 + [1.0])
    # centre the grid on the reference's field of view
    affine[:3, 3] = (lo + hi) / 2 - spacing_mm * (np.asarray(shape) - 1) / 2
    return Volume(np.zeros(shape, np.float32), affine, "CT")


def to_sitk(array: np.ndarray, grid: Volume):
    """SimpleITK image (LPS, identity direction) of a RAS array on ``grid``."""
    import SimpleITK as sitk

    lps = np.ascontiguousarray(np.asarray(array)[::-1, ::-1, :].transpose(2, 1, 0))
    img = sitk.GetImageFromArray(lps)
    corner = grid.world(np.array([grid.shape[0] - 1, grid.shape[1] - 1, 0], np.float64))
    img.SetOrigin((-float(corner[0]), -float(corner[1]), float(corner[2])))
    img.SetSpacing(tuple(float(s) for s in grid.spacing))
    return img


def from_sitk(img) -> np.ndarray:
    """RAS array of an image made by :func:`to_sitk` (or on the same grid)."""
    import SimpleITK as sitk

    return np.ascontiguousarray(sitk.GetArrayFromImage(img).transpose(2, 1, 0)[::-1, ::-1, :])


def lps_to_ras_index(grid: Volume, lps_mm: np.ndarray) -> np.ndarray:
    """Fractional RAS voxel indices on ``grid`` of LPS world points (N, 3)."""
    ras = np.asarray(lps_mm, np.float64) * np.array([-1.0, -1.0, 1.0])
    inv = np.linalg.inv(grid.affine)
    return ras @ inv[:3, :3].T + inv[:3, 3]
