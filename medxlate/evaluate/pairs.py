"""Find the (prediction, reference) pairs to evaluate: one pair, two folders, a CSV, a dataset.

Matching rules, by subject id:

- a file ``DIR/<id>.nii.gz`` (or .nii, .mha, .mhd, .nrrd): the id is the file's stem;
- a SynthRAD-style folder ``DIR/<id>/``: the reference is the CT registered to the MR grid,
  ``ct_on_mr.*`` (`medxlate phantom`) or ``ct_registered.*``, else ``ct.*`` (SynthRAD's CT is
  already on the MR grid); ``mr.*`` for synthetic MR. The prediction is ``sct.*`` or ``ct.*``
  (``smr.*`` or ``mr.*``), as `medxlate synthesize` names a layout's outputs; a reference folder's
  ``mask.*``, ``labels.*`` and source image (``mr.*``, or ``ct.*`` for synthetic MR) are used
  when the corresponding option is not given;
- a dataset folder from ``medxlate preprocess`` (it has ``dataset.json``) as the reference:
  ``subjects/<id>/ct.nii.gz``, ``mask.nii.gz`` and ``mr.nii.gz`` (docs/dataset-format.md);
- a folder with no such images is read as one DICOM series (one pair);
- ``--pairs CSV`` with columns ``id, pred, ref`` and optional ``mask, labels, source``;
  relative paths are relative to the CSV's folder.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from medxlate.errors import InputError, UsageError

SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd")
CSV_COLUMNS = ("id", "pred", "ref", "mask", "labels", "source")


@dataclass
class Case:
    """One subject to evaluate (paths; ``mask_origin`` says where the mask comes from)."""

    id: str
    pred: Path
    ref: Path
    mask: Path | None = None
    labels: Path | None = None
    source: Path | None = None
    mask_origin: str = "computed from the reference"
    mr_norm: dict | None = None
    extra: dict = field(default_factory=dict)


def image_stem(path: Path) -> str | None:
    """The id of an image file (its name without a known image suffix), else None."""
    name = path.name
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return None


def _image_named(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        for suffix in SUFFIXES:
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def scan_folder(folder: Path, names: tuple[str, ...]) -> dict[str, Path]:
    """id -> image for image files and for sub-folders holding one of ``names``."""
    found: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file():
            stem = image_stem(entry)
            if stem is not None:
                if stem in found:
                    raise InputError(f"{folder}: two images for subject {stem!r}")
                found[stem] = entry
        elif entry.is_dir():
            image = _image_named(entry, names)
            if image is not None:
                found[entry.name] = image
    return found


def _role_names(modality: str) -> dict[str, tuple[str, ...]]:
    if modality == "MR":
        return {"ref": ("mr",), "pred": ("smr", "mr"), "source": ("ct",)}
    # A registered CT first: a CT on its own grid would need --resample-to-ref and would then
    # be scored without the registration (evaluate/geometry.py refuses barely overlapping ones).
    return {"ref": ("ct_on_mr", "ct_registered", "ct"), "pred": ("sct", "ct"), "source": ("mr",)}


def _match_optional(option: Path | None, ids: list[str], what: str,
                    names: tuple[str, ...]) -> dict[str, Path]:
    if option is None:
        return {}
    if not option.is_dir():
        raise UsageError(f"--{what} must be a folder of per-subject images when --pred and "
                         f"--ref are folders ({option} is not a folder)")
    return {k: v for k, v in scan_folder(option, names).items() if k in ids}


def dataset_cases(dataset_root: Path, pred_dir: Path, modality: str) -> tuple[list[Case],
                                                                                  list[str]]:
    """Cases of a preprocess dataset reference and a prediction folder."""
    from medxlate.preprocess.dataset import load_dataset

    ds = load_dataset(dataset_root)
    names = _role_names(modality)
    preds = scan_folder(pred_dir, names["pred"])
    ref_key, src_key = ("mr", "ct") if modality == "MR" else ("ct", "mr")
    cases, unmatched = [], []
    for entry in ds.subjects():
        sid = entry["id"]
        if sid not in preds:
            unmatched.append(sid)
            continue
        src = ds.volume_path(sid, src_key)
        cases.append(Case(sid, preds.pop(sid), ds.volume_path(sid, ref_key),
                          mask=ds.volume_path(sid, "mask"), source=src if src.is_file() else None,
                          mask_origin="dataset mask.nii.gz", mr_norm=entry.get("mr_norm"),
                          extra={"normalisation": ds.normalisation}))
    for sid, path in preds.items():
        raise InputError(f"prediction {path} (subject {sid!r}) has no subject in dataset "
                         f"{dataset_root}")
    return cases, unmatched


def folder_cases(pred_dir: Path, ref_dir: Path, modality: str, mask: Path | None = None,
                 labels: Path | None = None, source: Path | None = None
                 ) -> tuple[list[Case], list[str]]:
    """Cases of two folders matched by id; returns (cases, reference ids with no prediction)."""
    if (ref_dir / "dataset.json").is_file():
        if mask or labels or source:
            raise UsageError("--mask/--labels/--source cannot be combined with a dataset folder "
                             "as --ref: the dataset provides them")
        return dataset_cases(ref_dir, pred_dir, modality)
    names = _role_names(modality)
    preds = scan_folder(pred_dir, names["pred"])
    refs = scan_folder(ref_dir, names["ref"])
    if not preds:
        raise InputError(f"{pred_dir}: no prediction images found")
    missing = sorted(set(preds) - set(refs))
    if missing:
        raise InputError(f"no reference in {ref_dir} for prediction(s) {', '.join(missing)}")
    ids = sorted(preds)
    masks = _match_optional(mask, ids, "mask", ("mask",))
    label_maps = _match_optional(labels, ids, "labels", ("labels",))
    sources = _match_optional(source, ids, "source", names["source"])
    cases = []
    for sid in ids:
        ref = refs[sid]
        folder = ref.parent if ref.parent != ref_dir else None
        case = Case(sid, preds[sid], ref)
        if sid in masks:
            case.mask, case.mask_origin = masks[sid], "file"
        elif mask is None and folder is not None and _image_named(folder, ("mask",)):
            case.mask, case.mask_origin = _image_named(folder, ("mask",)), "file"
        if sid in label_maps:
            case.labels = label_maps[sid]
        elif labels is None and folder is not None:
            case.labels = _image_named(folder, ("labels",))
        if sid in sources:
            case.source = sources[sid]
        elif source is None and folder is not None:
            case.source = _image_named(folder, names["source"])
        if mask is not None and case.mask is None:
            raise InputError(f"no mask for subject {sid!r} in {mask}")
        cases.append(case)
    return cases, sorted(set(refs) - set(preds))


def csv_cases(pairs: Path) -> list[Case]:
    """Cases from a CSV with columns id, pred, ref[, mask, labels, source]."""
    if not pairs.is_file():
        raise InputError(f"{pairs}: no such file")
    with open(pairs, newline="") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in ("id", "pred", "ref") if c not in columns]
        if missing:
            raise InputError(f"{pairs}: missing column(s) {', '.join(missing)} (columns: "
                             f"{', '.join(CSV_COLUMNS)})")
        unknown = [c for c in columns if c not in CSV_COLUMNS]
        if unknown:
            raise InputError(f"{pairs}: unknown column(s) {', '.join(unknown)}")
        rows = [{k.strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    base = pairs.parent

    def path(value: str) -> Path | None:
        return (base / value) if value else None

    cases, seen = [], set()
    for n, row in enumerate(rows, start=2):
        if not row["id"] or not row["pred"] or not row["ref"]:
            raise InputError(f"{pairs}:{n}: id, pred and ref are required")
        if row["id"] in seen:
            raise InputError(f"{pairs}:{n}: subject {row['id']!r} appears twice")
        seen.add(row["id"])
        case = Case(row["id"], path(row["pred"]), path(row["ref"]),
                    mask=path(row.get("mask", "")), labels=path(row.get("labels", "")),
                    source=path(row.get("source", "")))
        if case.mask is not None:
            case.mask_origin = "file"
        cases.append(case)
    if not cases:
        raise InputError(f"{pairs}: no rows")
    return cases


def find_cases(pred: Path | None, ref: Path | None, modality: str = "CT",
               mask: Path | None = None, labels: Path | None = None, source: Path | None = None,
               pairs: Path | None = None) -> tuple[list[Case], list[str]]:
    """All cases the options describe; returns (cases, reference ids with no prediction).

    Raises:
        UsageError: options that do not fit together.
        InputError: missing inputs or unmatched predictions.
    """
    if pairs is not None:
        if pred or ref or mask or labels or source:
            raise UsageError("--pairs replaces --pred/--ref/--mask/--labels/--source")
        return csv_cases(pairs), []
    if pred is None or ref is None:
        raise UsageError("give --pred and --ref (files or folders), or --pairs CSV")
    for p in (pred, ref):
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
    names = _role_names(modality)
    pred_cohort = pred.is_dir() and bool(scan_folder(pred, names["pred"]))
    ref_cohort = ref.is_dir() and ((ref / "dataset.json").is_file()
                                   or bool(scan_folder(ref, names["ref"])))
    if pred_cohort != ref_cohort:
        raise UsageError("--pred and --ref must both be images (files or DICOM series folders) "
                         "or both be folders of subjects")
    if pred_cohort:
        return folder_cases(pred, ref, modality, mask, labels, source)
    sid = image_stem(pred) or pred.name
    case = Case(sid, pred, ref, mask=mask, labels=labels, source=source)
    if mask is not None:
        case.mask_origin = "file"
    return [case], []
