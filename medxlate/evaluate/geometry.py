"""Prediction and reference must share a voxel grid; say exactly how they differ, or resample."""

from __future__ import annotations

import numpy as np

from medxlate.errors import InputError
from medxlate.io.volume import Volume

ATOL_MM = 1e-4


def describe(vol: Volume) -> str:
    """'shape 10x12x8, spacing 1x1x2.5 mm, orientation RAS, origin (..)' for error messages."""
    shape = "x".join(str(n) for n in vol.shape)
    spacing = "x".join(f"{s:.4g}" for s in vol.spacing)
    origin = ", ".join(f"{o:.4g}" for o in vol.origin)
    return f"shape {shape}, spacing {spacing} mm, orientation {vol.orientation}, " \
           f"origin ({origin}) mm"


def grid_differences(a: Volume, b: Volume) -> list[str]:
    """Which of shape, spacing, orientation, origin, direction differ (empty: same grid)."""
    diffs = []
    if a.shape != b.shape:
        diffs.append("shape")
    if not np.allclose(a.spacing, b.spacing, atol=ATOL_MM, rtol=0):
        diffs.append("spacing")
    if a.orientation != b.orientation:
        diffs.append("orientation")
    if not np.allclose(a.origin, b.origin, atol=ATOL_MM, rtol=0):
        diffs.append("origin")
    if not np.allclose(a.direction, b.direction, atol=1e-6, rtol=0):
        diffs.append("direction")
    return diffs


def check_same_grid(vol: Volume, ref: Volume, name: str, ref_name: str) -> None:
    """Raise InputError naming both images and what differs, unless the grids agree."""
    diffs = grid_differences(vol, ref)
    if diffs:
        raise InputError(f"{name} ({describe(vol)}) and {ref_name} ({describe(ref)}) differ in "
                         f"{', '.join(diffs)}; pass --resample-to-ref to resample onto the "
                         "reference grid")


def resample_to(vol: Volume, ref: Volume, order: int = 1, fill: float = -1024.0) -> Volume:
    """``vol`` sampled on ``ref``'s grid (world coordinates), ``fill`` outside ``vol``.

    order 1 is trilinear (images), 0 nearest neighbour (masks, labels).
    """
    from scipy import ndimage

    if not grid_differences(vol, ref):
        return vol
    # voxel of ref -> world -> voxel of vol
    matrix = np.linalg.inv(vol.affine) @ ref.affine
    out = ndimage.affine_transform(vol.array, matrix[:3, :3], offset=matrix[:3, 3],
                                   output_shape=ref.shape, order=order, mode="constant",
                                   cval=fill)
    return Volume(out.astype(np.float32), ref.affine.copy(), vol.modality, dict(vol.meta))
