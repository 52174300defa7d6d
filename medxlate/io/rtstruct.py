"""Read an RTSTRUCT's regions of interest and rasterise one onto a Volume's grid.

Contours are closed planar polygons in DICOM patient coordinates (LPS mm). Each one must lie
in a slice plane of the target grid (one voxel axis constant along it, within
:data:`PLANE_TOL` voxels); its points are taken to fractional voxel indices through the
grid's own voxel-to-world affine, and the slice's voxels whose centres lie inside are set with
the even-odd rule over all contours of that slice, so that a hole (an inner contour, or a
keyhole drawn as one contour) stays empty. A centre exactly on an edge counts on the edge's
low-index side (half-open crossing rule).

Example:
    >>> import numpy as np
    >>> from medxlate.io.volume import Volume
    >>> grid = Volume(np.zeros((6, 6, 1), np.float32), np.eye(4))
    >>> square = np.array([[-0.5, -0.5, 0], [-3.5, -0.5, 0], [-3.5, -2.5, 0], [-0.5, -2.5, 0]])
    >>> int(rasterize([square], grid).sum())    # LPS x -0.5..-3.5 -> RAS 0.5..3.5: 3 x 2 voxels
    6
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medxlate.errors import InputError
from medxlate.io.volume import Volume

#: A contour may leave its slice plane by this many voxels (DICOM decimal strings round).
PLANE_TOL = 0.1
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"


@dataclass
class Roi:
    """One region of interest: its number, frame of reference and closed planar contours."""

    number: int
    name: str
    frame_of_reference_uid: str
    contours: list[np.ndarray] = field(default_factory=list)   # each (N, 3), LPS mm
    other_types: list[str] = field(default_factory=list)        # POINT, OPEN_PLANAR ...


@dataclass
class StructureSet:
    path: Path
    rois: list[Roi]
    referenced_series: list[str]

    def names(self) -> list[str]:
        return [r.name for r in self.rois]

    def roi(self, name: str) -> Roi:
        """The ROI called ``name`` (exact, else case-insensitive); InputError otherwise."""
        found = [r for r in self.rois if r.name == name] or \
            [r for r in self.rois if r.name.lower() == name.lower()]
        if not found:
            raise InputError(f"{self.path}: no ROI named {name!r} (it has "
                             f"{', '.join(repr(n) for n in self.names()) or 'none'})")
        if len(found) > 1:
            raise InputError(f"{self.path}: {len(found)} ROIs are named {name!r} (ROI numbers "
                             f"{', '.join(str(r.number) for r in found)}); rename one")
        return found[0]


def read_rtstruct(path: Path | str) -> StructureSet:
    """Read an RTSTRUCT file (also one saved without the DICOM preamble)."""
    import pydicom

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such RTSTRUCT file")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom\.")
            ds = pydicom.dcmread(path, force=True)
        modality = str(ds.get("Modality", ""))
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one input error
        raise InputError(f"{path}: cannot read it as DICOM ({type(exc).__name__})") from exc
    if modality != "RTSTRUCT" or "StructureSetROISequence" not in ds:
        raise InputError(f"{path}: not an RTSTRUCT (Modality {modality or 'missing'})")
    frames = [str(f.get("FrameOfReferenceUID", ""))
              for f in ds.get("ReferencedFrameOfReferenceSequence", [])]
    series = [str(s.get("SeriesInstanceUID", "")) for f in
              ds.get("ReferencedFrameOfReferenceSequence", [])
              for st in f.get("RTReferencedStudySequence", [])
              for s in st.get("RTReferencedSeriesSequence", [])]
    rois = {}
    for item in ds.StructureSetROISequence:
        number = int(item.ROINumber)
        frame = str(item.get("ReferencedFrameOfReferenceUID", "") or (frames[0] if frames
                                                                       else ""))
        rois[number] = Roi(number, str(item.get("ROIName", "")).strip(), frame)
    for item in ds.get("ROIContourSequence", []):
        roi = rois.get(int(item.ReferencedROINumber))
        if roi is None:
            continue
        for contour in item.get("ContourSequence", []):
            kind = str(contour.get("ContourGeometricType", ""))
            data = np.asarray([float(v) for v in contour.get("ContourData", [])], np.float64)
            if kind != "CLOSED_PLANAR":
                roi.other_types.append(kind)
            elif data.size % 3:
                raise InputError(f"{path}: a contour of ROI {roi.name!r} has {data.size} "
                                 "coordinates, not a multiple of 3")
            elif data.size:
                roi.contours.append(data.reshape(-1, 3))
    return StructureSet(path, list(rois.values()), series)


def _even_odd(u: np.ndarray, v: np.ndarray, nu: int, nv: int) -> np.ndarray:
    """Voxel centres (integer u, v) inside the closed polygon (u, v), even-odd rule."""
    inside = np.zeros((nu, nv), bool)
    u1, v1 = np.roll(u, -1), np.roll(v, -1)
    centres = np.arange(nu)
    for j in range(max(0, int(np.ceil(v.min()))), min(nv - 1, int(np.floor(v.max()))) + 1):
        crossing = (v <= j) != (v1 <= j)    # half-open: no vertex is counted twice
        if not crossing.any():
            continue
        a, b, c, d = u[crossing], v[crossing], u1[crossing], v1[crossing]
        x = np.sort(a + (j - b) / (d - b) * (c - a))
        beyond = x.size - np.searchsorted(x, centres, side="right")   # crossings with u > i
        inside[:, j] = beyond % 2 == 1
    return inside


def rasterize(contours: list[np.ndarray], grid: Volume, what: str = "contour") -> np.ndarray:
    """Boolean mask on ``grid``: voxels inside the closed planar ``contours`` (LPS mm).

    Contours whose plane lies outside the grid are left out; one that is not in a slice
    plane of the grid is an InputError.
    """
    inv = np.linalg.inv(grid.affine)
    mask = np.zeros(grid.shape, bool)
    for points in contours:
        if len(points) < 3:
            continue
        ras = points * np.array([-1.0, -1.0, 1.0])
        idx = ras @ inv[:3, :3].T + inv[:3, 3]
        spread = idx.max(0) - idx.min(0)
        axis = int(np.argmin(spread))
        k = float(idx[:, axis].mean())
        if spread[axis] > PLANE_TOL or abs(k - round(k)) > PLANE_TOL:
            where = ("is not parallel to a slice plane" if spread[axis] > PLANE_TOL else
                     f"lies between two slices (at slice {k:.2f} along voxel axis {axis})")
            raise InputError(f"{what} {where} of the reference grid; rasterise onto the CT "
                             "series the structures were drawn on")
        k = int(round(k))
        if not 0 <= k < grid.shape[axis]:
            continue
        a, b = (ax for ax in range(3) if ax != axis)
        plane = _even_odd(idx[:, a], idx[:, b], grid.shape[a], grid.shape[b])
        view = np.moveaxis(mask, axis, 0)[k]          # (shape[a], shape[b]), a < b
        view ^= plane
    return mask


def roi_mask(structures: StructureSet, name: str, grid: Volume) -> tuple[np.ndarray, list[str]]:
    """(mask on ``grid``, warnings) of the ROI ``name``.

    The ROI's frame of reference must be the grid's (``grid.meta["dicom"]``): another one is
    an InputError; a grid not read from DICOM has none, which is a warning.
    """
    roi = structures.roi(name)
    label = f"{structures.path} ROI {roi.name!r}"
    if not roi.contours:
        kinds = sorted(set(roi.other_types))
        raise InputError(f"{label} has no closed planar contours"
                         + (f" (only {', '.join(kinds)})" if kinds else " (it is empty)"))
    found = []
    ours = (grid.meta.get("dicom") or {}).get("FrameOfReferenceUID")
    if ours is None:
        found.append(f"{label}: the reference CT was not read from DICOM, so its frame of "
                     "reference cannot be checked; the contours are placed by patient "
                     "coordinates alone")
    elif roi.frame_of_reference_uid and roi.frame_of_reference_uid != ours:
        raise InputError(f"{label} is in frame of reference {roi.frame_of_reference_uid}, the "
                         f"reference CT in {ours}: its contours do not belong to this CT")
    mask = rasterize(roi.contours, grid, f"a contour of {label}")
    if not mask.any():
        raise InputError(f"{label} covers no voxel of the reference grid (its contours lie "
                         "outside it or are smaller than a voxel)")
    return mask, found
