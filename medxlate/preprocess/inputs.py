"""Find the subjects of a run: one pair, a cohort (folder or CSV), or unpaired folders.

Cohort folder (SynthRAD layout, as ``medxlate phantom`` writes)::

    ROOT/<id>/mr.nii.gz   ct.nii.gz   [mask.nii.gz]   [truth.json]   [mr_t2.nii.gz ...]

(``.nii``, ``.mha``, ``.nrrd`` or a DICOM folder named ``mr``/``ct`` work too). Cohort CSV:
columns ``id``, ``mri`` (or ``mr``), ``ct``, optional ``mask``, ``split``, ``truth`` and
extra MR contrasts ``mr_t1``, ``mr_t2``, ``mr_t1ce``, ``mr_flair``, ``mr_pd``;
relative paths are relative to the CSV's folder. A row that lacks a modality becomes a
subject that fails with that reason (the others still run).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from medxlate.errors import InputError, UsageError

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr", ".zip", ".dcm")
SPLITS = ("train", "val", "test")
_NAMES = {"mr": ("mr", "mri"), "ct": ("ct",), "mask": ("mask",)}
#: A tissue label map on the MR grid (phantoms write one): preprocess carries it into the
#: dataset for label-driven augmentation (augment.profile=any-contrast, docs/any-contrast.md).
LABEL_NAMES = ("labels",)


@dataclass
class SubjectInput:
    """Where one subject's images are. ``problem`` is set when the subject cannot run."""

    id: str
    mr: Path | None = None
    ct: Path | None = None
    mask: Path | None = None
    truth: Path | None = None
    labels: Path | None = None  # tissue labels on the MR grid (optional)
    split: str | None = None
    problem: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def modalities(self) -> list[str]:
        return [m for m in ("mr", "ct") if getattr(self, m) is not None]


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "subject"


def stem(path: Path) -> str:
    name = Path(path).name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _is_image(path: Path) -> bool:
    return path.is_dir() or path.name.lower().endswith(IMAGE_SUFFIXES)


def find_named(folder: Path, kind: str) -> Path | None:
    """``folder/<name><suffix>`` or a DICOM folder ``folder/<name>`` for the kind's names."""
    for name in _NAMES[kind]:
        for suffix in IMAGE_SUFFIXES[:6]:
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
        if (folder / name).is_dir():
            return folder / name
    return None


def find_labels(folder: Path) -> Path | None:
    """``folder/labels.nii.gz`` (or another image suffix), if present."""
    for name in LABEL_NAMES:
        for suffix in IMAGE_SUFFIXES[:6]:
            if (folder / f"{name}{suffix}").is_file():
                return folder / f"{name}{suffix}"
    return None


def find_contrasts(folder: Path) -> dict[str, Path]:
    """Extra MR contrasts ``folder/mr_<tag><suffix>`` (tags of
    :data:`medxlate.preprocess.contrasts.CONTRAST_TAGS`), by tag."""
    from medxlate.preprocess.contrasts import CONTRAST_TAGS

    out = {}
    for tag in CONTRAST_TAGS:
        for suffix in IMAGE_SUFFIXES[:6]:
            candidate = folder / f"mr_{tag}{suffix}"
            if candidate.is_file():
                out[tag] = candidate
                break
        else:
            if (folder / f"mr_{tag}").is_dir():
                out[tag] = folder / f"mr_{tag}"
    return out


def pair(mri: Path, ct: Path, mask: Path | None = None, subject_id: str | None = None,
         truth: Path | None = None) -> list[SubjectInput]:
    """One MR/CT pair (``--mri/--ct``); the id defaults to the MR's folder or file name."""
    for what, path in (("--mri", mri), ("--ct", ct), ("--mask", mask)):
        if path is not None and not Path(path).exists():
            raise InputError(f"{what} {path}: no such file or folder")
    if subject_id is None:
        parent = Path(mri).resolve().parent.name
        subject_id = parent if stem(mri).lower() in ("mr", "mri") else stem(mri)
    folder_truth = Path(mri).resolve().parent / "truth.json"
    if truth is None and folder_truth.is_file():
        truth = folder_truth
    return [SubjectInput(_safe_id(subject_id), Path(mri), Path(ct), mask and Path(mask), truth)]


def cohort_folder(root: Path) -> list[SubjectInput]:
    """Subjects of a SynthRAD-layout folder (sub-folders holding mr/ct images)."""
    subjects = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        found = {kind: find_named(folder, kind) for kind in _NAMES}
        if not any(found.values()):
            continue  # not a subject folder (figures, logs...)
        s = SubjectInput(_safe_id(folder.name), found["mr"], found["ct"], found["mask"])
        contrasts = find_contrasts(folder)
        if contrasts:
            s.extra["contrasts"] = contrasts
        truth = folder / "truth.json"
        s.truth = truth if truth.is_file() else None
        s.labels = find_labels(folder)
        missing = [k.upper() for k in ("mr", "ct") if found[k] is None]
        if missing:
            s.problem = f"no {' or '.join(missing)} image in {folder} (expected e.g. " \
                        f"{missing[0].lower()}.nii.gz)"
        subjects.append(s)
    if not subjects:
        raise InputError(f"--cohort {root}: no subject folders with mr/ct images found "
                         "(expected <root>/<id>/mr.nii.gz and ct.nii.gz)")
    return subjects


def cohort_csv(path: Path) -> list[SubjectInput]:
    """Subjects of a CSV with columns id, mri (or mr), ct, [mask], [split], [truth]."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
            columns = [c.strip().lower() for c in (rows[0].keys() if rows else [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"--cohort {path}: cannot read the CSV ({exc})") from exc
    if not rows:
        raise InputError(f"--cohort {path}: no rows")
    mr_col = "mri" if "mri" in columns else "mr"
    missing = [c for c in ("id", mr_col, "ct") if c not in columns]
    if missing:
        raise InputError(f"--cohort {path}: missing column(s) {', '.join(missing)} (expected "
                         "id,mri,ct[,mask][,split])")
    base = path.parent
    subjects, seen = [], set()
    for line, raw in enumerate(rows, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        sid = _safe_id(row["id"] or f"row{line}")
        if sid in seen:
            raise InputError(f"--cohort {path}: subject id {sid!r} appears twice (line {line})")
        seen.add(sid)
        s = SubjectInput(sid)
        problems = []
        for kind, column in (("mr", mr_col), ("ct", "ct"), ("mask", "mask"), ("truth", "truth"),
                             ("labels", "labels")):
            value = row.get(column, "")
            if not value:
                if kind in ("mr", "ct"):
                    problems.append(f"no {kind.upper()} (column {column!r} is empty)")
                continue
            p = Path(value) if Path(value).is_absolute() else base / value
            if not p.exists():
                label = kind.upper() if kind in ("mr", "ct") else kind
                problems.append(f"{label} {p} does not exist")
                continue
            setattr(s, kind, p)
        from medxlate.preprocess.contrasts import CONTRAST_TAGS

        for tag in CONTRAST_TAGS:
            value = row.get(f"mr_{tag}", "")
            if value:
                p = Path(value) if Path(value).is_absolute() else base / value
                if p.exists():
                    s.extra.setdefault("contrasts", {})[tag] = p
                else:
                    problems.append(f"MR {tag} {p} does not exist")
        split = row.get("split", "")
        if split:
            if split not in SPLITS:
                raise InputError(f"--cohort {path} line {line}: split {split!r} is not one of "
                                 f"{', '.join(SPLITS)}")
            s.split = split
        if s.truth is None and s.mr is not None and s.mr.parent.name == sid:
            truth = s.mr.parent / "truth.json"
            s.truth = truth if truth.is_file() else None
        if s.labels is None and s.mr is not None and s.mr.parent.name == sid \
                and s.mr.name.startswith("mr"):  # a phantom's own folder
            s.labels = find_labels(s.mr.parent)
        s.problem = "; ".join(problems) or None
        subjects.append(s)
    return subjects


def unpaired(mri_dir: Path | None, ct_dir: Path | None) -> list[SubjectInput]:
    """One single-modality subject per image (file or DICOM folder) in each folder."""
    subjects = []
    for kind, folder in (("mr", mri_dir), ("ct", ct_dir)):
        if folder is None:
            continue
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"--{'mri' if kind == 'mr' else 'ct'}-dir {folder}: not a folder")
        images = sorted(p for p in folder.iterdir() if _is_image(p) and not p.name.startswith("."))
        if not images:
            raise InputError(f"{folder}: no images found")
        for image in images:
            s = SubjectInput(_safe_id(f"{kind}-{stem(image)}"))
            setattr(s, kind, image)
            subjects.append(s)
    return subjects


def discover(mri=None, ct=None, mask=None, subject_id=None, cohort=None, mri_dir=None,
             ct_dir=None) -> tuple[list[SubjectInput], bool]:
    """The subjects of a run from the CLI's input options, and whether the data are paired."""
    modes = [name for name, given in (("--mri/--ct", mri is not None or ct is not None),
                                      ("--cohort", cohort is not None),
                                      ("--mri-dir/--ct-dir", mri_dir is not None
                                       or ct_dir is not None)) if given]
    if len(modes) != 1:
        raise UsageError("give exactly one input: --mri and --ct, --cohort, or --mri-dir/--ct-dir"
                         + (f" (got {', '.join(modes)})" if modes else ""))
    if modes[0] == "--mri/--ct":
        if mri is None or ct is None:
            raise UsageError("--mri and --ct go together (use --mri-dir/--ct-dir for unpaired "
                             "data)")
        return pair(Path(mri), Path(ct), mask and Path(mask), subject_id), True
    if mask is not None or subject_id is not None:
        raise UsageError("--mask and --id apply to a single --mri/--ct pair")
    if modes[0] == "--cohort":
        cohort = Path(cohort)
        if cohort.is_dir():
            return cohort_folder(cohort), True
        if cohort.is_file():
            return cohort_csv(cohort), True
        raise InputError(f"--cohort {cohort}: no such folder or CSV file")
    return unpaired(mri_dir and Path(mri_dir), ct_dir and Path(ct_dir)), False
