"""Write a Volume as a derived DICOM series (e.g. a synthetic CT), one file per slice.

Slices are written along the volume's superior axis in LPS storage order (columns
towards patient Left, rows towards Posterior for an axial volume), the layout treatment
planning systems expect. Pixels are int16 with RescaleSlope 1 / RescaleIntercept 0 for
CT, so stored values are HU; values outside int16 are clipped to [-32768, 32767] and
non-integer values rounded to the nearest integer.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

from medxlate import __version__
from medxlate.errors import InputError, OutputError, UsageError
from medxlate.io.atomic import atomic_path, refuse_foreign
from medxlate.io.volume import Volume

_SLICE_NAME = re.compile(r"^IM\d{5}\.dcm$")  # the file names write_dicom_series gives
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
INT16 = np.iinfo(np.int16)
COPIED_FROM_REFERENCE = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "StudyInstanceUID", "StudyID", "StudyDate", "StudyTime", "StudyDescription",
    "AccessionNumber", "ReferringPhysicianName", "FrameOfReferenceUID",
    "PositionReferenceIndicator", "PatientPosition", "BodyPartExamined",
)


def _lps_ordered(vol: Volume) -> Volume:
    """The same image with voxel axes closest to L, P, S (world coordinates unchanged)."""
    ornt = nib.orientations.io_orientation(vol.affine)
    transform = nib.orientations.ornt_transform(ornt, nib.orientations.axcodes2ornt("LPS"))
    array = nib.orientations.apply_orientation(vol.array, transform)
    affine = vol.affine @ nib.orientations.inv_ornt_aff(transform, vol.array.shape)
    return Volume(np.ascontiguousarray(array), affine, vol.modality, vol.meta)


def _rescale(vol: Volume) -> tuple[float, float]:
    """(slope, intercept) of the int16 pixels, from one pass over the slices.

    CT (and "unknown", which is written as CT): HU rounded and clipped, slope 1. MR keeps
    slope 1 when its values are integers inside int16; otherwise a linear rescale spreads
    [min, max] over the int16 range so that no contrast is lost. Slice by slice, so that a
    large series never needs a float64 copy of the whole volume.
    """
    if vol.modality != "MR":
        return 1.0, 0.0
    integral, low, high = True, np.inf, -np.inf
    for k in range(vol.shape[2]):
        plane = vol.array[:, :, k].astype(np.float64)
        integral = integral and bool(np.all(plane == np.rint(plane)))
        low, high = min(low, float(plane.min())), max(high, float(plane.max()))
    if integral and low >= INT16.min and high <= INT16.max:
        return 1.0, 0.0
    slope = (high - low) / (INT16.max - INT16.min) or 1.0
    return slope, low - INT16.min * slope


def _stored_slice(plane: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """One slice's int16 pixels: (value - intercept) / slope, rounded and clipped."""
    data = plane.astype(np.float64)
    if slope != 1.0 or intercept != 0.0:
        data = (data - intercept) / slope
    return np.clip(np.rint(data), INT16.min, INT16.max).astype(np.int16)


def _base_dataset(vol: Volume, reference: Volume | None, description: str,
                  series_uid: str) -> Dataset:
    ds = Dataset()
    ref = (reference.meta.get("dicom") or {}) if reference is not None else {}
    now = dt.datetime.now()
    if ref:
        for keyword in COPIED_FROM_REFERENCE:
            if keyword in ref:
                setattr(ds, keyword, ref[keyword])
    else:  # a standalone series: new patient and study, labelled as such
        ds.PatientName = "MEDXLATE^STANDALONE"
        ds.PatientID = "MEDXLATE-" + generate_uid()[-12:]
        ds.StudyInstanceUID = generate_uid()
        ds.FrameOfReferenceUID = generate_uid()
        ds.StudyDescription = "medxlate standalone series (no reference DICOM)"
        ds.StudyDate, ds.StudyTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
        ds.StudyID = "1"
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                    "ReferringPhysicianName", "AccessionNumber", "StudyID"):
        if keyword not in ds:
            setattr(ds, keyword, "")
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.Modality = "MR" if vol.modality == "MR" else "CT"
    ds.SOPClassUID = MR_STORAGE if ds.Modality == "MR" else CT_STORAGE
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = int(ref.get("SeriesNumber", 0) or 0) + 1000
    ds.SeriesDescription = description
    ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.Manufacturer = "medxlate"
    ds.SoftwareVersions = f"medxlate {__version__}"
    if ref.get("SeriesInstanceUID"):
        item = Dataset()
        item.SeriesInstanceUID = ref["SeriesInstanceUID"]
        item.StudyInstanceUID = ref.get("StudyInstanceUID", ds.StudyInstanceUID)
        ds.ReferencedSeriesSequence = Sequence([item])
        ds.DerivationDescription = f"derived by medxlate from series {ref['SeriesInstanceUID']}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    return ds


def write_dicom_series(vol: Volume, folder: Path | str, overwrite: bool = False,
                       reference: Volume | None = None,
                       description: str = "medxlate derived CT") -> list[Path]:
    """Write ``vol`` as a DICOM series folder (one IMxxxxx.dcm per slice), atomically.

    Args:
        vol: the image; CT in HU. Values outside int16 are clipped, others rounded.
        folder: output folder (must not exist unless ``overwrite``).
        overwrite: replace a series medxlate wrote in ``folder`` before (recognised by its
            file names and headers, see :func:`foreign_entries`); a folder holding anything
            else is refused.
        reference: a Volume read from DICOM (its ``meta["dicom"]``): patient, study and
            FrameOfReferenceUID are copied and ReferencedSeriesSequence points to it. None
            writes a standalone series with new patient/study UIDs, labelled as such.
        description: SeriesDescription.

    Returns:
        The paths of the written files, in slice order (inferior to superior).

    Raises:
        UsageError: ``reference`` was not read from DICOM.
        InputError: the volume holds NaN/Inf voxels.
        OutputError: the folder exists (without ``overwrite``), holds files medxlate did
            not write, or cannot be written.
    """
    folder = Path(folder)
    if reference is not None and not reference.meta.get("dicom"):
        raise UsageError("the reference volume has no DICOM metadata (read it from DICOM); "
                         "pass reference=None for a standalone series")
    bad = int(vol.array.size - np.count_nonzero(np.isfinite(vol.array)))
    if bad:
        raise InputError(f"{bad} voxels are NaN/Inf; DICOM cannot store them")
    out = _lps_ordered(vol)
    slope, intercept = _rescale(out)
    lps = RAS_TO_LPS @ out.affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    row_cos, col_cos = lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]
    series_uid = generate_uid()
    base = _base_dataset(out, reference, description, series_uid)
    names = []
    with atomic_path(folder, overwrite, folder_check=check_own_series) as tmp:
        try:
            tmp.mkdir()
        except OSError as exc:
            raise OutputError(f"{folder}: cannot create the series folder ({exc})") from exc
        for k in range(out.shape[2]):
            ds = Dataset()
            ds.update(base)
            ds.SOPInstanceUID = generate_uid()
            ds.InstanceNumber = k + 1
            position = lps[:3, :3] @ [0, 0, k] + lps[:3, 3]
            ds.ImagePositionPatient = [_ds(v) for v in position]
            ds.ImageOrientationPatient = [_ds(v) for v in (*row_cos, *col_cos)]
            ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]  # row spacing \ column
            ds.SliceThickness = _ds(spacing[2])
            ds.SpacingBetweenSlices = _ds(spacing[2])
            ds.SliceLocation = _ds(float(position @ np.cross(row_cos, col_cos)))
            ds.Rows, ds.Columns = out.shape[1], out.shape[0]
            ds.RescaleSlope, ds.RescaleIntercept = _ds(slope), _ds(intercept)
            if ds.Modality == "CT":
                ds.RescaleType = "HU"
            stored = _stored_slice(out.array[:, :, k], slope, intercept)
            ds.PixelData = np.ascontiguousarray(stored.T).tobytes()
            ds.file_meta = _file_meta(ds)
            name = f"IM{k + 1:05d}.dcm"
            ds.save_as(tmp / name, enforce_file_format=True)
            names.append(name)
    return [folder / n for n in names]


def _writer(path: Path) -> tuple[str, str] | None:
    """(SeriesInstanceUID, "Manufacturer|SoftwareVersions") of a DICOM file; None when it
    is not DICOM."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=[
            "SeriesInstanceUID", "Manufacturer", "SoftwareVersions"])
    except Exception:  # noqa: BLE001 - anything unreadable is simply not ours
        return None
    return str(ds.get("SeriesInstanceUID", "")), \
        f"{ds.get('Manufacturer', '')}|{ds.get('SoftwareVersions', '')}"


def foreign_entries(folder: Path) -> list[str]:
    """What in ``folder`` is not part of one DICOM series medxlate wrote there.

    Ours: regular files named ``IMnnnnn.dcm`` whose headers say medxlate wrote them
    (Manufacturer ``medxlate``, SoftwareVersions ``medxlate <version>``), all of one
    SeriesInstanceUID. Anything else (other files, sub-folders, links, a scanner's slices,
    slices of a second series) is listed.
    """
    foreign, series = [], set()
    for entry in sorted(Path(folder).iterdir(), key=lambda p: p.name):
        plain = entry.is_file() and not entry.is_symlink()
        found = _writer(entry) if plain and _SLICE_NAME.match(entry.name) else None
        if found is None or not found[1].startswith("medxlate|medxlate"):
            foreign.append(entry.name + ("/" if entry.is_dir() else ""))
        else:
            series.add(found[0])
    if len(series) > 1:
        foreign.append(f"slices of {len(series)} different series")
    return foreign


def check_own_series(folder: Path) -> None:
    """OutputError unless ``folder`` holds nothing but a DICOM series medxlate wrote.

    ``--overwrite`` replaces such a series; it never deletes anything else.
    """
    refuse_foreign(folder, foreign_entries(folder), "medxlate",
                   "move those away or choose another output folder")


def _ds(value: float) -> str:
    """A decimal string of at most 16 characters (DICOM DS) keeping micrometre precision."""
    text = f"{float(value):.10g}"
    return text if len(text) <= 16 else f"{float(value):.6f}"[:16]


def _file_meta(ds: Dataset) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta
