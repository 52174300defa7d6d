"""One 2D frame per DICOM slice: position, orientation, spacing, rescale and pixels.

Classic single-frame images give one frame per file; enhanced multi-frame CT/MR give
one frame per item of PerFrameFunctionalGroupsSequence, each attribute looked up in the
frame's own functional groups first and in the shared ones second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from medxlate.errors import InputError
from medxlate.io.dicom_files import DicomFile


@dataclass
class Frame:
    """A 2D image placed in DICOM patient space (LPS, mm).

    Attributes:
        position: ImagePositionPatient, centre of the first transmitted pixel.
        iop: ImageOrientationPatient (row direction cosines, then column direction cosines).
        pixel_spacing: (between rows, between columns) in mm, DICOM order.
        thickness: SliceThickness or SpacingBetweenSlices in mm (None if absent).
        slope, intercept: RescaleSlope/RescaleIntercept of this frame.
        pixels: returns the stored values, shape (Rows, Columns).
        label: file name (and frame number) for messages.
    """

    position: np.ndarray
    iop: np.ndarray
    pixel_spacing: tuple[float, float]
    thickness: float | None
    slope: float
    intercept: float
    pixels: Callable[[], np.ndarray]
    label: str


PIXEL_DATA = Tag(0x7FE0, 0x0010)


def _floats(value, n: int, what: str, label: str) -> np.ndarray:
    try:
        out = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        out = np.array([])
    if out.size != n:
        raise InputError(f"{label}: missing or malformed {what}")
    return out


def _thickness(item: Dataset) -> float | None:
    for key in ("SpacingBetweenSlices", "SliceThickness"):
        value = item.get(key)
        if value not in (None, "") and float(value) > 0:
            return float(value)
    return None


def _rescale(item: Dataset) -> tuple[float, float]:
    slope, intercept = item.get("RescaleSlope"), item.get("RescaleIntercept")
    return (float(slope) if slope not in (None, "") else 1.0,
            float(intercept) if intercept not in (None, "") else 0.0)


def _pixel_array(ds: Dataset, label: str) -> np.ndarray:
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise InputError(f"{label}: colour image (SamplesPerPixel {ds.SamplesPerPixel}); "
                         "a greyscale CT/MR image is required")
    deferred = ds._dict.get(PIXEL_DATA)
    try:
        return ds.pixel_array
    except Exception as exc:  # decoders raise many types; name the transfer syntax
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", syntax)
        raise InputError(f"{label}: cannot decode pixel data ({name}): {exc}") from exc
    finally:
        # Each frame is decoded once and copied into the volume (or streamed out): drop
        # pydicom's caches (the decoded array, and the pixel bytes of a file read with
        # deferred pixel data), else a series holds every slice twice more in memory.
        ds._pixel_array, ds._pixel_id = None, {}
        if isinstance(deferred, RawDataElement) and deferred.value is None:
            ds._dict[PIXEL_DATA] = deferred


def classic_frame(f: DicomFile) -> Frame:
    """The frame of a single-frame image file (pixels loaded on demand)."""
    h = f.header
    slope, intercept = _rescale(h)
    ps = _floats(h.get("PixelSpacing"), 2, "PixelSpacing", f.label)
    return Frame(
        position=_floats(h.get("ImagePositionPatient"), 3, "ImagePositionPatient", f.label),
        iop=_floats(h.get("ImageOrientationPatient"), 6, "ImageOrientationPatient", f.label),
        pixel_spacing=(float(ps[0]), float(ps[1])), thickness=_thickness(h),
        slope=slope, intercept=intercept,
        pixels=lambda: _pixel_array(f.load(), f.label), label=f.label,
    )


def _group(frame_item: Dataset, shared: Dataset, sequence: str) -> Dataset | None:
    for source in (frame_item, shared):
        seq = source.get(sequence)
        if seq:
            return seq[0]
    return None


def enhanced_frames(f: DicomFile) -> list[Frame]:
    """One frame per item of PerFrameFunctionalGroupsSequence of an enhanced image."""
    h = f.header
    per_frame = h.get("PerFrameFunctionalGroupsSequence")
    n_frames = int(h.get("NumberOfFrames", 1) or 1)
    if not per_frame or len(per_frame) != n_frames:
        raise InputError(f"{f.label}: multi-frame image without per-frame positions "
                         "(PerFrameFunctionalGroupsSequence/PlanePositionSequence); its "
                         "geometry is unknown")
    shared_seq = h.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else Dataset()
    all_pixels = lru_cache(maxsize=1)(lambda: _pixel_array(f.load(), f.label).reshape(
        n_frames, int(h.Rows), int(h.Columns)))
    frames = []
    for index, item in enumerate(per_frame):
        label = f"{f.label} frame {index + 1}"
        position = _group(item, shared, "PlanePositionSequence")
        orientation = _group(item, shared, "PlaneOrientationSequence")
        measures = _group(item, shared, "PixelMeasuresSequence")
        if position is None or orientation is None or measures is None:
            raise InputError(f"{label}: enhanced image without PlanePosition/PlaneOrientation/"
                             "PixelMeasures functional groups; its geometry is unknown")
        transform = _group(item, shared, "PixelValueTransformationSequence") or h
        slope, intercept = _rescale(transform)
        ps = _floats(measures.get("PixelSpacing"), 2, "PixelSpacing", label)
        frames.append(Frame(
            position=_floats(position.get("ImagePositionPatient"), 3, "ImagePositionPatient",
                             label),
            iop=_floats(orientation.get("ImageOrientationPatient"), 6,
                        "ImageOrientationPatient", label),
            pixel_spacing=(float(ps[0]), float(ps[1])),
            thickness=_thickness(measures) or _thickness(h),
            slope=slope, intercept=intercept,
            pixels=lambda i=index: all_pixels()[i], label=label,
        ))
    return frames


def frames_of(files: list[DicomFile]) -> list[Frame]:
    """All frames of a stack of files (one enhanced file, or single-frame files)."""
    if len(files) == 1:
        h = files[0].header
        if int(h.get("NumberOfFrames", 1) or 1) > 1 or "PerFrameFunctionalGroupsSequence" in h:
            return enhanced_frames(files[0])
    return [classic_frame(f) for f in files]
