"""Read one DICOM series (folder, single file or .zip) into a canonical RAS+ Volume.

Compressed transfer syntaxes (JPEG lossless, JPEG-LS, JPEG 2000, RLE) are decoded by
pydicom's pylibjpeg plugins; enhanced multi-frame CT/MR by their functional groups.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from medxlate.io.dicom_files import Series, find_dicom_files, group_series, select_series
from medxlate.io.dicom_frames import frames_of
from medxlate.io.dicom_stack import stack_frames
from medxlate.io.volume import Volume

# Tags a derived series needs (patient, study, frame of reference) or that tell where the
# data came from. Kept as strings so that Volume.meta stays JSON-able.
META_TAGS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "PatientPosition", "StudyInstanceUID", "StudyID", "StudyDate", "StudyTime",
    "StudyDescription", "AccessionNumber", "ReferringPhysicianName", "FrameOfReferenceUID",
    "PositionReferenceIndicator", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription",
    "SeriesDate", "SeriesTime", "SOPClassUID", "Modality", "Manufacturer",
    "ManufacturerModelName", "InstitutionName", "BodyPartExamined", "ImageType",
    "SpecificCharacterSet", "KVP", "MagneticFieldStrength", "ConvolutionKernel",
)


def dicom_meta(series: Series) -> dict[str, str]:
    """JSON-able copy of :data:`META_TAGS` from the first file of a series."""
    header = series.files[0].header
    meta = {}
    for keyword in META_TAGS:
        value = header.get(keyword)
        if value is None or value == "":
            continue
        if keyword in ("ImageType", "SpecificCharacterSet") and not isinstance(value, str):
            value = "\\".join(str(v) for v in value)
        meta[keyword] = str(value)
    return meta


#: MR acquisition times (ms) that tell the weighting (the input guard reads them); kept apart
#: from META_TAGS, which a derived series copies.
SEQUENCE_TAGS = ("EchoTime", "RepetitionTime", "InversionTime")


def sequence_meta(series: Series) -> dict[str, float]:
    """EchoTime, RepetitionTime and InversionTime (ms) of an MR series' first file, where
    present and numeric."""
    header = series.files[0].header
    out = {}
    for keyword in SEQUENCE_TAGS:
        try:
            out[keyword] = float(header.get(keyword))
        except (TypeError, ValueError):
            continue
    return out


def padding_hu(series: Series) -> list[float] | None:
    """[low, high] HU of PixelPaddingValue (to PixelPaddingRangeLimit, if given), rescaled
    with the first file's slope/intercept; None when the header names no padding."""
    header = series.files[0].header
    values = [header.get(k) for k in ("PixelPaddingValue", "PixelPaddingRangeLimit")]
    values = [v for v in values if isinstance(v, (int, float))]
    if not values:
        return None
    slope = header.get("RescaleSlope")
    intercept = header.get("RescaleIntercept")
    slope = float(slope) if slope not in (None, "") else 1.0
    intercept = float(intercept) if intercept not in (None, "") else 0.0
    hu = sorted(float(v) * slope + intercept for v in values)
    return [hu[0], hu[-1]]


def list_series(path: Path | str, skip_derived: bool = False) -> list[dict]:
    """The series under ``path``, in index order: uid, description, slices, modality."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom\.")
        series = group_series(find_dicom_files(Path(path)), skip_derived)
    return [s.to_json(i) for i, s in enumerate(series)]


def read_dicom_tags(path: Path | str, series: str | int | None = None,
                    skip_derived: bool = False) -> dict[str, str]:
    """The ``meta["dicom"]`` that :func:`read_dicom` gives the same arguments, from the
    headers alone (no pixel data is read). Raises as :func:`read_dicom` does when ``path``
    holds no image or several series and no choice."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom\.")
        chosen = select_series(group_series(find_dicom_files(Path(path)), skip_derived),
                               series, Path(path))
    return dicom_meta(chosen)


def read_dicom(path: Path | str, series: str | int | None = None, skip_derived: bool = False,
               modality: str = "unknown") -> Volume:
    """Read one DICOM series into a canonical (RAS+) float32 Volume (CT in HU).

    Args:
        path: a folder (searched recursively), a single .dcm file or a .zip of DICOM files.
        series: SeriesInstanceUID or 0-based index (see :func:`list_series`) when ``path``
            holds several series; required then.
        skip_derived: ignore derived images, localizers and scouts (ImageType).
        modality: used only when the header's Modality is neither CT nor MR.

    Raises:
        InputError: no DICOM image, several series and no choice, a gap or uneven spacing,
            gantry tilt, duplicate positions, undecodable pixels.
        UsageError: ``series`` names no series.
    """
    path = Path(path)
    with warnings.catch_warnings():
        # pydicom warns about every malformed value (common in real archives); the checks
        # that matter for geometry and values raise InputError below instead.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom\.")
        chosen = select_series(group_series(find_dicom_files(path), skip_derived), series, path)
        array, affine = stack_frames(frames_of(chosen.files), str(path))
    header_modality = chosen.modality.upper()
    meta = {"source": str(path), "format": "dicom", "dicom": dicom_meta(chosen),
            "dicom_files": len(chosen.files)}
    sequence = sequence_meta(chosen)
    if sequence:
        meta["mr_sequence"] = sequence
    padding = padding_hu(chosen)
    if padding is not None:
        meta["padding_hu"] = padding
    vol = Volume(array, affine, header_modality if header_modality in ("CT", "MR") else modality,
                 meta)
    vol = vol.canonical()
    vol.array = np.ascontiguousarray(vol.array)
    return vol
