"""Write a dose grid (Gy) as a DICOM RT Dose file in the reference CT's frame of reference.

One multi-frame file: frames along the grid's slice axis in LPS storage order (columns towards
patient Left, rows towards Posterior for an axial grid), ImagePositionPatient the first
voxel's centre, GridFrameOffsetVector each frame's distance from it along the slice normal
(PS3.3 C.8.8.3.2), unsigned 32-bit pixels times DoseGridScaling = dose in Gy. Patient, study
and FrameOfReferenceUID are copied from the reference CT (a Volume read from DICOM), so a
planning system or viewer overlays the dose on that series.

Example:
    >>> write_rtdose(dose, "s1_dose_ref.dcm", reference=ct, plan_uid=uid)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import generate_uid

from medxlate import __version__
from medxlate.errors import InputError, UsageError
from medxlate.io.atomic import atomic_path
from medxlate.io.dicom_write import (
    COPIED_FROM_REFERENCE,
    RAS_TO_LPS,
    _ds,
    _file_meta,
    _lps_ordered,
)
from medxlate.io.volume import Volume

RTDOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
RTPLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"
UINT32_MAX = 2 ** 32 - 1


def has_frame_of_reference(tags: dict | None) -> bool:
    """True when a CT with these DICOM tags (``Volume.meta["dicom"]``; None: not read from
    DICOM) names the frame of reference an RTDOSE on it must be written in."""
    return bool((tags or {}).get("FrameOfReferenceUID"))


def dose_scaling(max_gy: float) -> float:
    """DoseGridScaling (as DICOM stores it, a decimal string) that spreads ``max_gy`` over
    the uint32 range."""
    return float(_ds(max_gy / UINT32_MAX)) if max_gy > 0 else 1.0


def write_rtdose(dose: Volume, path: Path | str, reference: Volume, plan_uid: str,
                 comment: str = "medxlate dose", overwrite: bool = False) -> Path:
    """Write ``dose`` (Gy, any grid whose slice axis is normal to its rows and columns).

    Args:
        dose: physical dose in Gy; negative values (none in an engine's dose) are stored as 0.
        path: the .dcm file to write (atomically).
        reference: the CT the dose was planned on, read from DICOM (``meta["dicom"]``).
        plan_uid: the SOP Instance UID named in ReferencedRTPlanSequence (DoseSummationType
            PLAN); files of one plan share it.
        comment: DoseComment and SeriesDescription.
        overwrite: replace an existing file.

    Raises:
        UsageError: ``reference`` was not read from DICOM.
        InputError: the dose has NaN/Inf voxels or a sheared grid.
    """
    ref = reference.meta.get("dicom") or {}
    if not has_frame_of_reference(ref):
        raise UsageError("RTDOSE needs a reference CT read from DICOM (its frame of reference)")
    if not np.isfinite(dose.array).all():
        raise InputError("the dose grid has NaN/Inf voxels; RTDOSE cannot store them")
    out = _lps_ordered(dose)
    lps = RAS_TO_LPS @ out.affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    row_cos, col_cos = lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]
    normal = np.cross(row_cos, col_cos)
    step = float(lps[:3, 2] @ normal)
    if not np.allclose(lps[:3, 2], step * normal, atol=1e-6 * spacing[2]):
        raise InputError("the dose grid's slices are sheared; RTDOSE frames must be stacked "
                         "along their normal")
    values = np.maximum(out.array.astype(np.float64), 0.0)
    scaling = dose_scaling(float(values.max()))
    stored = np.clip(np.rint(values / scaling), 0, UINT32_MAX).astype(np.uint32)

    ds = Dataset()
    for keyword in COPIED_FROM_REFERENCE:
        if keyword in ref:
            setattr(ds, keyword, ref[keyword])
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                    "ReferringPhysicianName", "AccessionNumber", "StudyID", "StudyDate",
                    "StudyTime"):
        if keyword not in ds:
            setattr(ds, keyword, "")
    now = dt.datetime.now()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = RTDOSE_STORAGE, generate_uid()
    ds.Modality = "RTDOSE"
    ds.SeriesInstanceUID, ds.SeriesNumber = generate_uid(), 1
    ds.SeriesDescription = ds.DoseComment = comment[:64]
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.Manufacturer, ds.SoftwareVersions = "medxlate", f"medxlate {__version__}"
    ds.ImagePositionPatient = [_ds(v) for v in lps[:3, 3]]
    ds.ImageOrientationPatient = [_ds(v) for v in (*row_cos, *col_cos)]
    ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]      # row spacing \ column spacing
    ds.SliceThickness = _ds(abs(step))
    ds.GridFrameOffsetVector = [_ds(k * step) for k in range(out.shape[2])]
    ds.FrameIncrementPointer = Tag("GridFrameOffsetVector")
    ds.NumberOfFrames = out.shape[2]
    ds.Rows, ds.Columns = out.shape[1], out.shape[0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 32, 32, 31, 0
    ds.DoseUnits, ds.DoseType, ds.DoseSummationType = "GY", "PHYSICAL", "PLAN"
    ds.DoseGridScaling = _ds(scaling)
    plan = Dataset()
    plan.ReferencedSOPClassUID, plan.ReferencedSOPInstanceUID = RTPLAN_STORAGE, plan_uid
    ds.ReferencedRTPlanSequence = Sequence([plan])
    # frames, rows (towards the grid's axis 1), columns (axis 0)
    ds.PixelData = np.ascontiguousarray(stored.transpose(2, 1, 0)).tobytes()
    ds.file_meta = _file_meta(ds)
    path = Path(path)
    with atomic_path(path, overwrite) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return path
