"""What to translate and where to write it: inputs, output names, cohort sharding.

``--in`` may be one image file, a DICOM series (folder, .dcm file or .zip), a folder of image
files (or of DICOM series sub-folders), or a .txt/.csv list of paths (one per line; for CSV
the first column, an optional header row; relative paths are relative to the list).

Subject cohorts are recognised and their outputs named by subject id, ``OUT/<id>/sct.nii.gz``
(``smr`` for synthetic MR), the names `medxlate evaluate` looks for:

- a SynthRAD / `medxlate phantom` layout: a folder of ``<id>/`` folders holding ``mr.*``
  (``.nii.gz``, ``.nii``, ``.mha``, ``.mhd``, ``.nrrd``, or an ``mr/`` DICOM series), ``ct.*``...,
  or one such ``<id>/`` folder alone;
- a cohort CSV whose header has an ``id`` column and image columns (``mr`` or ``mri``, ``ct``,
  ``t1``, ``mr_t2``...), as `medxlate phantom` and `medxlate preprocess --cohort` use; paths
  are relative to the CSV.

The image read for each subject is chosen by the translation's source modality
(:data:`SOURCE_NAMES`).
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
    source: Path | None
    stem: str
    output: Path | None = None
    uncertainty: Path | None = None
    subject: str | None = None  # subject id of a layout folder or cohort CSV row
    problem: str | None = None  # why this subject cannot run (e.g. no image of the source)


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


# Image names of a subject folder / cohort CSV column, by modality tag, in order of preference.
SOURCE_NAMES = {"mr": ("mr", "mri", "mr_t1", "t1"), "t1": ("mr_t1", "t1", "mr", "mri"),
                "ct": ("ct",)}
SUBJECT_IMAGE_NAMES = ("mr", "mri", "ct", "mr_t1", "mr_t2", "t1", "t2", "t1ce", "flair", "pd",
                       "mr_t1ce", "mr_flair", "mr_pd")


def source_names(tag: str) -> tuple[str, ...]:
    """Names a subject's image of modality ``tag`` may have (``t2`` -> mr_t2, t2)."""
    return SOURCE_NAMES.get(tag, (f"mr_{tag}", tag))


def output_name(target: str) -> str:
    """File stem of a subject's output: ``sct`` for CT, ``smr`` for any MR contrast."""
    return "sct" if target == "ct" else "smr"


@dataclass
class Subject:
    """One subject of a layout folder or cohort CSV: its id and images by name."""

    id: str
    images: dict[str, Path]


def _subject_images(folder: Path) -> dict[str, Path]:
    images = {}
    for entry in folder.iterdir():
        lower = entry.name.lower()
        if entry.is_dir() and lower in SUBJECT_IMAGE_NAMES and any(
                p.is_file() for p in entry.iterdir()):
            images.setdefault(lower, entry)  # a DICOM series folder (phantom --format dicom)
            continue
        for suffix in IMAGE_SUFFIXES:
            if entry.is_file() and lower.endswith(suffix) and \
                    lower[: -len(suffix)] in SUBJECT_IMAGE_NAMES:
                images.setdefault(lower[: -len(suffix)], entry)
    return images


def _layout_subjects(folder: Path) -> list[Subject]:
    subjects = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            images = _subject_images(entry)
            if images:
                subjects.append(Subject(entry.name, images))
    return subjects


def _csv_subjects(path: Path) -> list[Subject] | None:
    try:
        rows = list(csv.reader(path.read_text().splitlines()))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the input list ({exc})") from exc
    if not rows:
        return None
    header = [c.strip().lower() for c in rows[0]]
    columns = [c for c in header if c in SUBJECT_IMAGE_NAMES]
    if "id" not in header or not columns:
        return None
    subjects, seen = [], set()
    for n, row in enumerate(rows[1:], start=2):
        values = dict(zip(header, (c.strip() for c in row)))
        sid = values.get("id", "")
        if not sid or sid.startswith("#"):
            continue
        if sid in seen:
            raise InputError(f"{path}:{n}: subject {sid!r} appears twice")
        seen.add(sid)
        images = {c: (path.parent / values[c]) if not Path(values[c]).is_absolute()
                  else Path(values[c]) for c in columns if values.get(c)}
        subjects.append(Subject(sid, images))
    if not subjects:
        raise InputError(f"{path}: the cohort CSV has no subject rows")
    return subjects


def collect_subjects(path: Path | str) -> list[Subject] | None:
    """The subjects of a layout folder or an id/image cohort CSV; None for other inputs."""
    path = Path(path)
    if path.is_file() and path.name.lower().endswith(".csv"):
        return _csv_subjects(path)
    if path.is_dir():
        own = _subject_images(path)
        if own:
            return [Subject(path.name, own)]  # one subject's folder, e.g. C/brain-000
        return _layout_subjects(path) or None
    return None


def plan_subject_cases(subjects: list[Subject], source: str, target: str, out: Path, fmt: str,
                       uncertainty: Path | None) -> list[Case]:
    """Cases named by subject id: ``out/<id>/sct.nii.gz`` (``uncertainty/<id>/sct_std...``)."""
    name, ext = output_name(target), OUT_FORMATS[fmt]
    wanted = source_names(source)
    cases = []
    for i, subject in enumerate(sorted(subjects, key=lambda s: s.id)):
        image = next((subject.images[n] for n in wanted if n in subject.images), None)
        case = Case(i, image, subject.id, out / subject.id / f"{name}{ext}",
                    uncertainty / subject.id / f"{name}_std.nii.gz" if uncertainty else None,
                    subject=subject.id)
        if image is None:
            case.problem = (f"subject {subject.id}: no {source} image (looked for "
                            f"{', '.join(wanted)}; found {', '.join(sorted(subject.images))})")
        cases.append(case)
    return cases
