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
                         "reference grid (this does not register: the reference must already "
                         "be aligned with the prediction's source, e.g. ct_on_mr.nii.gz)")


MIN_OVERLAP = 0.5  # share of the smaller field of view that must lie inside the other


def inside_fraction(vol: Volume, other: Volume, n: int = 16) -> float:
    """Share of ``vol``'s field of view (an n^3 lattice of voxel centres) inside ``other``'s."""
    axes = [np.linspace(0, s - 1, min(n, s)) for s in vol.shape]
    idx = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    world = idx @ vol.affine[:3, :3].T + vol.affine[:3, 3]
    inv = np.linalg.inv(other.affine)
    there = world @ inv[:3, :3].T + inv[:3, 3]
    inside = np.all((there >= -0.5) & (there <= np.asarray(other.shape) - 0.5), axis=1)
    return float(inside.mean())


def check_overlap(vol: Volume, ref: Volume, name: str, ref_name: str) -> None:
    """InputError when the two fields of view barely overlap in world space.

    The overlap is measured against the smaller field of view (a CT covering more than the
    MR is normal): less than :data:`MIN_OVERLAP` of either lies inside the other. Resampling
    a prediction onto such a reference scores mostly fill values: the reference is almost
    always a CT that was never registered to the prediction's source image.
    """
    a, b = inside_fraction(vol, ref), inside_fraction(ref, vol)
    if max(a, b) < MIN_OVERLAP:
        raise InputError(f"{name} and {ref_name} barely overlap in world space ({a:.0%} of the "
                         f"first lies inside the second, {b:.0%} the other way round; need "
                         f"{MIN_OVERLAP:.0%}): is the reference registered to the prediction's "
                         "source? Use a registered CT (e.g. ct_on_mr.nii.gz)")


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
