"""Stack DICOM frames into one volume with an exact voxel->RAS affine.

Frames are sorted by ImagePositionPatient projected on the slice normal
(row cosines x column cosines), never by file name or InstanceNumber. The stack must be
regular: one orientation and pixel spacing, no two frames at one position, uniform
spacing along the normal (a missing slice or uneven spacing is refused, naming the gap)
and no in-plane drift between slices (gantry tilt is refused, not silently resampled):
every frame lies within GRID_TOL_MM of where the returned affine puts it.

DICOM patient space is LPS; the affine returned is RAS (x and y negated).
"""

from __future__ import annotations

import numpy as np

from medxlate.errors import InputError
from medxlate.io.dicom_frames import Frame

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
ORIENTATION_TOL = 1e-4  # direction cosines
DUPLICATE_MM = 0.01  # two frames closer than this along the normal share a position
# Every frame must lie within this distance of where the regular grid puts it (along the
# normal and across the plane). DS strings hold positions rounded to about 1e-3 mm.
GRID_TOL_MM = 0.02


def _check_same_plane(frames: list[Frame], where: str) -> None:
    first = frames[0]
    for f in frames[1:]:
        if not np.allclose(f.iop, first.iop, atol=ORIENTATION_TOL):
            raise InputError(f"{where}: slices have different orientations ({f.label}); "
                             "not one volume")
        if not np.allclose(f.pixel_spacing, first.pixel_spacing, atol=1e-4):
            raise InputError(f"{where}: slices have different pixel spacings ({f.label}: "
                             f"{f.pixel_spacing} vs {first.pixel_spacing})")


def slice_normal(iop: np.ndarray) -> np.ndarray:
    """Unit normal (LPS) of the image plane: row cosines x column cosines."""
    normal = np.cross(iop[:3], iop[3:])
    return normal / np.linalg.norm(normal)


def _slice_step(frames: list[Frame], heights: np.ndarray, where: str) -> float:
    """The uniform spacing along the normal; InputError for duplicates, gaps, unevenness."""
    if len(frames) == 1:
        return frames[0].thickness or 1.0
    gaps = np.diff(heights)
    if np.any(gaps < DUPLICATE_MM):
        i = int(np.argmin(gaps))
        raise InputError(f"{where}: {frames[i].label} and {frames[i + 1].label} lie at the same "
                         f"position ({heights[i]:.3f} mm along the normal): several "
                         "acquisitions, echoes or phases in one series")
    typical = float(np.median(gaps))
    step = float((heights[-1] - heights[0]) / (len(frames) - 1))
    off_grid = np.abs(heights - (heights[0] + step * np.arange(len(frames))))
    if off_grid.max() <= GRID_TOL_MM:
        return step
    bad = np.flatnonzero(np.abs(gaps - typical) > GRID_TOL_MM)
    i = int(bad[0]) if bad.size else int(np.argmax(off_grid))
    if bad.size and gaps[i] > 1.5 * typical:
        missing = round(gaps[i] / typical) - 1
        raise InputError(
            f"{where}: gap in the slice stack: {gaps[i]:.3f} mm between {frames[i].label} "
            f"and {frames[i + 1].label} (at {heights[i]:.3f} and {heights[i + 1]:.3f} mm "
            f"along the normal) where the spacing is {typical:.3f} mm: about {missing} "
            "slice(s) missing")
    raise InputError(f"{where}: uneven slice spacing ({gaps.min():.3f} to {gaps.max():.3f} mm; "
                     f"{frames[i].label} lies {off_grid.max():.3f} mm off a regular grid); "
                     "resample to a regular grid first")


def _check_no_tilt(positions: np.ndarray, normal: np.ndarray, where: str) -> None:
    offsets = positions - positions[0]
    along = offsets @ normal
    drift = np.linalg.norm(offsets - np.outer(along, normal), axis=1)
    length = float(abs(along[-1])) or 1.0
    if drift.max() > GRID_TOL_MM:
        angle = float(np.degrees(np.arctan2(drift[-1], length)))
        raise InputError(f"{where}: slice positions drift {drift.max():.3f} mm across the image "
                         f"plane over {length:.1f} mm ({angle:.2f} degrees): gantry tilt or a "
                         "sheared stack, which a regular volume cannot hold; correct the tilt "
                         "first (e.g. dcm2niix)")


def sorted_stack(frames: list[Frame], where: str) -> tuple[list[Frame], np.ndarray]:
    """The frames sorted along the slice normal, and the RAS affine of the (columns, rows,
    slices) array they form; InputError for an irregular stack (see the module docstring)."""
    _check_same_plane(frames, where)
    iop = frames[0].iop
    normal = slice_normal(iop)
    positions = np.array([f.position for f in frames])
    order = np.argsort(positions @ normal, kind="stable")
    frames = [frames[i] for i in order]
    positions = positions[order]
    step = _slice_step(frames, positions @ normal, where)
    if len(frames) > 1:
        _check_no_tilt(positions, normal, where)
    row_spacing, col_spacing = frames[0].pixel_spacing
    lps = np.eye(4)
    lps[:3, 0] = iop[:3] * col_spacing
    lps[:3, 1] = iop[3:] * row_spacing
    lps[:3, 2] = normal * step
    lps[:3, 3] = positions[0]
    return frames, LPS_TO_RAS @ lps


def integral_rescale(frames: list[Frame]) -> bool:
    """True when every frame's RescaleSlope and RescaleIntercept are whole numbers, so that
    integer stored values give integer outputs (CT in HU, usually)."""
    return all(float(f.slope).is_integer() and float(f.intercept).is_integer() for f in frames)


def frame_values(frame: Frame, where: str, shape=None, integer: bool = False) -> np.ndarray:
    """One frame's rescaled values, (rows, columns): int32 when ``integer`` (exact), else
    float32 (slope and intercept applied in float32)."""
    stored = np.asarray(frame.pixels())
    if shape is not None and stored.shape != tuple(shape):
        raise InputError(f"{where}: {frame.label} is {stored.shape}, others {tuple(shape)}")
    if integer and stored.dtype.kind in "iu":
        return stored.astype(np.int32) * int(frame.slope) + int(frame.intercept)
    out = np.multiply(stored, np.float32(frame.slope), dtype=np.float32)
    out += np.float32(frame.intercept)
    return out


def stack_frames(frames: list[Frame], where: str) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, rescaled float32 array (columns, rows, slices) and its RAS affine.

    Array axis 0 follows the row direction cosines (column index), axis 1 the column
    direction cosines (row index), axis 2 the slice normal, increasing along it.
    RescaleSlope/Intercept are applied per slice in float32.
    """
    frames, affine = sorted_stack(frames, where)
    stack = None  # filled slice by slice in storage order, transposed once at the end
    for k, frame in enumerate(frames):
        stored = np.asarray(frame.pixels())
        if stack is None:
            stack = np.empty((len(frames), *stored.shape), np.float32)
        if stored.shape != stack.shape[1:]:
            raise InputError(f"{where}: {frame.label} is {stored.shape}, others "
                             f"{stack.shape[1:]}")
        np.multiply(stored, np.float32(frame.slope), out=stack[k], casting="unsafe")
        stack[k] += np.float32(frame.intercept)
    array = stack.transpose(2, 1, 0)
    return array, affine
