"""What to translate and where to write it: inputs, output names, cohort sharding.

``--in`` may be one image file, a DICOM series (folder, .dcm file or .zip), a folder of image
files (or of DICOM series sub-folders), or a .txt/.csv list of paths (one per line; for CSV
the first column, an optional header row; relative paths are relative to the list).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from medxlate.errors import InputError, UsageError

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr")
LIST_SUFFIXES = (".txt", ".csv")
OUT_FORMATS = {"nifti": ".nii.gz", "mha": ".mha", "dicom": ""}


@dataclass
class Case:
    """One input of a run and its outputs; ``index`` is its place in the sorted full list."""

    index: int
    source: Path
    stem: str
    output: Path | None = None
    uncertainty: Path | None = None


def _is_image(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(IMAGE_SUFFIXES + (".zip",))


def _read_list(path: Path) -> list[Path]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the input list ({exc})") from exc
    if path.suffix.lower() == ".csv":
        rows = [row[0].strip() for row in csv.reader(text.splitlines()) if row and row[0].strip()]
        if rows and not (path.parent / rows[0]).exists() and not rows[0].lower().endswith(
                IMAGE_SUFFIXES + (".zip", ".dcm")):
            rows = rows[1:]  # a header row ("path", "input"...)
    else:
        rows = [line.strip() for line in text.splitlines()]
    entries = [r for r in rows if r and not r.startswith("#")]
    if not entries:
        raise InputError(f"{path}: the input list is empty")
    return [(path.parent / e) if not Path(e).is_absolute() else Path(e) for e in entries]


def collect_inputs(path: Path | str) -> tuple[list[Path], bool]:
    """Sorted input paths and whether ``path`` names a cohort (several cases possible).

    Raises:
        InputError: the path does not exist, or a folder holds nothing to translate.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    name = path.name.lower()
    if path.is_file() and name.endswith(LIST_SUFFIXES):
        return sorted(_read_list(path), key=str), True
    if path.is_file():
        return [path], False
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    images = sorted((p for p in entries if _is_image(p)), key=str)
    if images:
        return images, True
    if any(p.is_file() for p in entries):
        return [path], False  # a DICOM series folder
    series = sorted((p for p in entries if p.is_dir()), key=str)
    if not series:
        raise InputError(f"{path}: the folder holds no image files or DICOM series")
    return series, True


def stem_of(path: Path) -> str:
    """Name part used for outputs: ``mr.nii.gz`` -> ``mr``; a DICOM folder -> its name."""
    name = path.name
    lower = name.lower()
    for suffix in IMAGE_SUFFIXES + (".zip",):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    if lower.endswith(".dcm"):
        return path.parent.name or "series"
    return name


def unique_stems(paths: list[Path]) -> list[str]:
    """Stems, prefixed with parent folder names where two inputs would collide."""
    stems = [stem_of(p) for p in paths]
    depth = 0
    while len(set(stems)) < len(stems) and depth < 8:
        depth += 1
        counts = {s: stems.count(s) for s in stems}
        stems = ["_".join([*p.parent.parts[-depth:], stem_of(p)]) if counts[s] > 1 else s
                 for p, s in zip(paths, stems, strict=True)]
    return stems


def output_format(out: Path, requested: str | None, cohort: bool) -> str:
    """The output format: ``--out-format``, else the single output's suffix, else NIfTI."""
    name = out.name.lower()
    by_suffix = ("nifti" if name.endswith((".nii", ".nii.gz"))
                 else "mha" if name.endswith((".mha", ".mhd", ".nrrd", ".nhdr")) else None)
    if requested is not None and requested not in OUT_FORMATS:
        raise UsageError(f"--out-format {requested!r}: choose from {', '.join(OUT_FORMATS)}")
    if by_suffix and cohort:
        raise UsageError(f"--out {out}: several inputs need an output folder, not a file name")
    if by_suffix and requested and requested != by_suffix:
        raise UsageError(f"--out {out} has a {by_suffix} suffix but --out-format is {requested}")
    return by_suffix or requested or "nifti"


def plan_cases(inputs: list[Path], cohort: bool, out: Path, fmt: str,
               uncertainty: Path | None) -> list[Case]:
    """Attach output (and uncertainty) paths to every input."""
    stems = unique_stems(inputs)
    ext = OUT_FORMATS[fmt]
    single_file = not cohort and (out.name.lower().endswith(IMAGE_SUFFIXES) or fmt == "dicom")
    if uncertainty is not None and not cohort and not uncertainty.name.lower().endswith(
            IMAGE_SUFFIXES):
        raise UsageError(f"--uncertainty {uncertainty}: give a .nii.gz or .mha file name")
    cases = []
    for i, (src, stem) in enumerate(zip(inputs, stems, strict=True)):
        output = out if single_file else out / f"{stem}_sct{ext}"
        if uncertainty is None:
            unc = None
        elif cohort:
            unc = uncertainty / f"{stem}_sct_std.nii.gz"
        else:
            unc = uncertainty
        cases.append(Case(i, src, stem, output, unc))
    return cases


def shard(cases: list[Case], num_parts: int, part_id: int) -> list[Case]:
    """Cases of part ``part_id`` of ``num_parts``: every num_parts-th of the sorted list.

    Example:
        >>> [c.index for c in shard([Case(i, Path(str(i)), str(i)) for i in range(7)], 3, 1)]
        [1, 4]
    """
    if num_parts < 1 or not 0 <= part_id < num_parts:
        raise UsageError(f"--part-id must be in [0, {num_parts - 1}] and --num-parts >= 1 "
                         f"(got --num-parts {num_parts} --part-id {part_id})")
    return cases[part_id::num_parts]
