"""Small DICOM objects built with pydicom alone, with geometry known by construction:
a CT series and an RTSTRUCT of closed planar contours (for the RTSTRUCT/RTDOSE tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"


def _meta(ds: Dataset) -> None:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian


def _patient(ds: Dataset, study_uid: str, frame_uid: str) -> None:
    ds.PatientName, ds.PatientID = "TEST^RT", "RT-1"
    ds.StudyInstanceUID, ds.FrameOfReferenceUID = study_uid, frame_uid
    ds.StudyDate, ds.StudyTime, ds.StudyID = "20260101", "120000", "1"


def ct_series(folder: Path, hu: np.ndarray, origin, row_dir, col_dir, pixel_mm, slice_mm,
              study_uid: str | None = None, frame_uid: str | None = None) -> dict:
    """Write ``hu`` (slices, rows, columns) as an axial-ish CT series.

    Pixel (s, r, c) lies at ``origin + c * pixel_mm[1] * row_dir + r * pixel_mm[0] * col_dir
    + s * slice_mm * (row_dir x col_dir)`` (LPS mm). Returns the series' UIDs.
    """
    folder.mkdir(parents=True, exist_ok=True)
    uids = {"study": study_uid or generate_uid(), "frame": frame_uid or generate_uid(),
            "series": generate_uid()}
    row_dir, col_dir = np.asarray(row_dir, float), np.asarray(col_dir, float)
    normal = np.cross(row_dir, col_dir)
    for s in range(hu.shape[0]):
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = CT_STORAGE, generate_uid()
        _patient(ds, uids["study"], uids["frame"])
        ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "CT", uids["series"], 1
        ds.InstanceNumber = s + 1
        ds.ImagePositionPatient = [float(v) for v in np.asarray(origin) + s * slice_mm * normal]
        ds.ImageOrientationPatient = [float(v) for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [float(pixel_mm[0]), float(pixel_mm[1])]
        ds.SliceThickness = float(slice_mm)
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = np.ascontiguousarray(hu[s].astype(np.int16)).tobytes()
        _meta(ds)
        ds.save_as(folder / f"CT{s:04d}.dcm", enforce_file_format=True)
    return uids


def rtstruct(path: Path, rois: dict[str, list[np.ndarray]], frame_uid: str,
             study_uid: str | None = None, series_uid: str = "",
             frames: dict[str, str] | None = None, kinds: dict[str, str] | None = None) -> Path:
    """Write an RTSTRUCT: ROI name -> contours ((N, 3) LPS mm). ``frames`` gives an ROI
    another frame of reference; ``kinds`` another ContourGeometricType (e.g. POINT)."""
    frames, kinds = frames or {}, kinds or {}
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = RTSTRUCT_STORAGE, generate_uid()
    _patient(ds, study_uid or generate_uid(), frame_uid)
    del ds.FrameOfReferenceUID
    ds.Modality, ds.SeriesInstanceUID = "RTSTRUCT", generate_uid()
    ds.StructureSetLabel = "test"
    series = Dataset()
    series.SeriesInstanceUID = series_uid
    study = Dataset()
    study.RTReferencedSeriesSequence = Sequence([series])
    frame = Dataset()
    frame.FrameOfReferenceUID = frame_uid
    frame.RTReferencedStudySequence = Sequence([study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame])
    ds.StructureSetROISequence, ds.ROIContourSequence = Sequence(), Sequence()
    for number, (name, contours) in enumerate(rois.items(), start=1):
        item = Dataset()
        item.ROINumber, item.ROIName = number, name
        item.ReferencedFrameOfReferenceUID = frames.get(name, frame_uid)
        ds.StructureSetROISequence.append(item)
        roi = Dataset()
        roi.ReferencedROINumber = number
        roi.ContourSequence = Sequence()
        for points in contours:
            c = Dataset()
            c.ContourGeometricType = kinds.get(name, "CLOSED_PLANAR")
            c.NumberOfContourPoints = len(points)
            c.ContourData = [f"{v:.6g}" for v in np.asarray(points, float).ravel()]
            roi.ContourSequence.append(c)
        ds.ROIContourSequence.append(roi)
    _meta(ds)
    ds.save_as(path, enforce_file_format=True)
    return path


def polygon(xy, z: float) -> np.ndarray:
    """(N, 3) LPS points of a planar polygon at height ``z``."""
    xy = np.asarray(xy, float)
    return np.column_stack([xy, np.full(len(xy), float(z))])
