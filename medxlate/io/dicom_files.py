"""Find DICOM image files (folder, single file or .zip) and group them into series.

A series here is one stack that can become one volume: files that share
SeriesInstanceUID, ImageOrientationPatient and matrix size (a localizer stored in the
same series with another orientation is a separate stack). An enhanced multi-frame file
is a stack of its own.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from medxlate.errors import InputError, UsageError

SKIPPED_TYPES = ("LOCALIZER", "SCOUT")


@dataclass
class DicomFile:
    """One DICOM image file: its header (pixel data deferred or left out), how to load it."""

    label: str
    header: Dataset
    load: Callable[[], Dataset]


@dataclass
class Series:
    """One stack of images that can become one volume."""

    uid: str
    description: str
    modality: str
    number: int
    files: list[DicomFile] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Number of slices (frames for a multi-frame file)."""
        if len(self.files) == 1:
            return int(self.files[0].header.get("NumberOfFrames", 1) or 1)
        return len(self.files)

    def describe(self, index: int) -> str:
        return (f"[{index}] {self.uid} '{self.description}' {self.count} slices "
                f"{self.modality}")

    def to_json(self, index: int) -> dict:
        return {"index": index, "uid": self.uid, "description": self.description,
                "slices": self.count, "modality": self.modality, "number": self.number}


DEFER_BYTES = 4096  # larger values (pixel data) are read from the file only when used


def _read_header(source, label: str) -> Dataset | None:
    """The dataset with its pixel data deferred (files) or left out (zip members).

    None for files that are not DICOM images; InputError for a damaged DICOM file (it has
    the 'DICM' marker but does not parse), which must not silently drop out of a series.
    """
    try:
        if isinstance(source, Path):
            ds = pydicom.dcmread(source, defer_size=DEFER_BYTES)
        else:
            ds = pydicom.dcmread(source, stop_before_pixels=True)
    except InvalidDicomError:
        return None
    except Exception as exc:  # pydicom raises many types on damaged files
        if _has_marker(source):
            raise InputError(f"{label}: damaged DICOM file ({type(exc).__name__}: {exc})") from exc
        return None
    return ds if "Rows" in ds and "Columns" in ds else None


def _has_marker(source) -> bool:
    try:
        if isinstance(source, Path):
            with open(source, "rb") as fh:
                head = fh.read(132)
        else:
            source.seek(0)
            head = source.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def _folder_files(folder: Path) -> tuple[list[DicomFile], int]:
    found, looked = [], 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.name.startswith(".") or path.name.upper() == "DICOMDIR":
            continue
        looked += 1
        header = _read_header(path, str(path))
        if header is not None:
            found.append(DicomFile(str(path.relative_to(folder)), header,
                                   lambda h=header: h))
    return found, looked


def _zip_files(archive: Path) -> tuple[list[DicomFile], int]:
    found, looked = [], 0
    try:
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.endswith("/") or "__MACOSX" in name:
                    continue
                looked += 1
                header = _read_header(io.BytesIO(zf.read(name)), f"{archive}:{name}")
                if header is not None:
                    found.append(DicomFile(name, header, lambda n=name: _zip_load(archive, n)))
    except zipfile.BadZipFile as exc:
        raise InputError(f"{archive}: not a readable zip archive ({exc})") from exc
    return found, looked


def _zip_load(archive: Path, name: str) -> Dataset:
    with zipfile.ZipFile(archive) as zf:
        return pydicom.dcmread(io.BytesIO(zf.read(name)))


def find_dicom_files(path: Path) -> list[DicomFile]:
    """Every DICOM image under ``path`` (a folder, a .zip or one file); InputError if none."""
    path = Path(path)
    if path.is_dir():
        files, looked = _folder_files(path)
    elif path.suffix.lower() == ".zip":
        files, looked = _zip_files(path)
    else:
        header = _read_header(path, str(path))
        if header is None:
            raise InputError(f"{path}: not a DICOM image file")
        files, looked = [DicomFile(path.name, header, lambda: header)], 1
    if not files:
        raise InputError(f"{path}: no DICOM image found ({looked} files looked at)")
    return files


def is_derived(header: Dataset) -> bool:
    """True for derived images and localizers/scouts (ImageType)."""
    image_type = [str(v).upper() for v in (header.get("ImageType") or [])]
    return bool(image_type) and (image_type[0] == "DERIVED"
                                 or any(t in image_type for t in SKIPPED_TYPES))


def _stack_key(header: Dataset) -> tuple:
    uid = str(header.get("SeriesInstanceUID", ""))
    if int(header.get("NumberOfFrames", 1) or 1) > 1 or "PerFrameFunctionalGroupsSequence" in header:
        return (uid, str(header.get("SOPInstanceUID", id(header))))
    # coarse rounding: near-equal orientations stay together and are then checked strictly
    iop = tuple(round(float(v), 2) for v in (header.get("ImageOrientationPatient") or []))
    return (uid, iop, int(header.Rows), int(header.Columns))


def group_series(files: list[DicomFile], skip_derived: bool = False) -> list[Series]:
    """Group files into stacks, sorted by SeriesNumber then UID (the order of indices)."""
    if skip_derived:
        kept = [f for f in files if not is_derived(f.header)]
        if not kept:
            raise InputError(f"all {len(files)} DICOM images are derived or localizers "
                             "(--skip-derived left nothing)")
        files = kept
    stacks: dict[tuple, Series] = {}
    for f in files:
        key = _stack_key(f.header)
        if key not in stacks:
            h = f.header
            number = h.get("SeriesNumber")
            stacks[key] = Series(key[0], str(h.get("SeriesDescription", "") or ""),
                                 str(h.get("Modality", "") or "?"),
                                 int(number) if number not in (None, "") else -1)
        stacks[key].files.append(f)
    return sorted(stacks.values(), key=lambda s: (s.number, s.uid, s.description))


def select_series(series: list[Series], choice: str | int | None, where: Path) -> Series:
    """The one stack to read: the only one, or the one ``choice`` names (UID or index)."""
    listing = "; ".join(s.describe(i) for i, s in enumerate(series))
    if choice is None or str(choice).strip() == "":
        if len(series) == 1:
            return series[0]
        raise InputError(f"{where} holds {len(series)} series; pick one with --series "
                         f"UID-or-index: {listing}")
    text = str(choice).strip()
    if text.isdigit():
        index = int(text)
        if index >= len(series):
            raise UsageError(f"--series {index}: only {len(series)} series in {where}: {listing}")
        return series[index]
    matches = [s for s in series if s.uid == text]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"--series {text}: no such SeriesInstanceUID in {where}: {listing}")
    raise UsageError(f"--series {text}: that UID holds {len(matches)} stacks (different "
                     f"orientation or size); pick one by index: {listing}")
