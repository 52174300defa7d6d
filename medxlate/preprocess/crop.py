"""Step 6: crop to the mask's bounding box plus a margin, recording how to undo it.

The record ``{"start", "stop", "shape_before", "affine_before"}`` places the cropped array at
``[start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]]`` of the grid it was cut from.
"""

from __future__ import annotations

import numpy as np

from medxlate.errors import InputError
from medxlate.io.volume import Volume


def crop_box(mask: np.ndarray, spacing, margin_mm: float) -> tuple[list[int], list[int]]:
    """``(start, stop)`` of the mask's bounding box grown by ``margin_mm``, inside the array."""
    if not mask.any():
        raise InputError("cannot crop: the body mask is empty")
    idx = np.argwhere(mask)
    margin = [int(np.ceil(margin_mm / s)) for s in spacing]
    start = [max(0, int(lo) - m) for lo, m in zip(idx.min(0), margin)]
    stop = [min(n, int(hi) + 1 + m) for hi, m, n in zip(idx.max(0), margin, mask.shape)]
    return start, stop


def crop(vol: Volume, start, stop) -> Volume:
    """The sub-volume ``[start:stop]`` with its affine moved to the new first voxel."""
    sl = tuple(slice(a, b) for a, b in zip(start, stop))
    affine = vol.affine.copy()
    affine[:3, 3] = vol.world(np.asarray(start, dtype=np.float64))
    return Volume(np.ascontiguousarray(vol.array[sl]), affine, vol.modality, dict(vol.meta))


def crop_record(vol: Volume, start, stop) -> dict:
    return {"start": [int(s) for s in start], "stop": [int(s) for s in stop],
            "shape_before": list(vol.shape), "affine_before": vol.affine.tolist()}


def uncrop(array: np.ndarray, record: dict, fill: float) -> np.ndarray:
    """Place a cropped array back into the grid it was cut from (``fill`` elsewhere)."""
    out = np.full(record["shape_before"], fill, dtype=array.dtype)
    sl = tuple(slice(a, b) for a, b in zip(record["start"], record["stop"]))
    out[sl] = array
    return out
