"""Write phantom subjects in the SynthRAD layout, and whole cohorts with a cohort.csv.

Layout of one subject folder ``DIR/<id>/`` (``--format nifti``):

- ``mr.nii.gz``: the MR (the first requested contrast; T1w unless ``--contrast t2``);
  with ``--contrast both`` also ``mr_t1.nii.gz`` (same file as mr.nii.gz, hard-linked
  when the file system allows) and ``mr_t2.nii.gz``. int16, arbitrary scanner units.
- ``ct.nii.gz``: the CT on its own grid, int16 HU.
- ``ct_on_mr.nii.gz``: the CT resampled onto the MR grid through the true transform
  (trilinear, rounded to integer HU, -1024 outside the CT field of view).
- ``mask.nii.gz``: body mask on the MR grid (uint8 0/1).
- ``labels.nii.gz``: tissue labels on the MR grid; ``labels_ct.nii.gz``: on the CT grid.
- ``truth.json``: transform, grids, tissue values, acquisition parameters.

With ``--format dicom`` the MR and CT images are DICOM series folders (``mr/``, ``ct/``,
``mr_t1/``, ``mr_t2/``) and the derived images stay NIfTI.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from medxlate.errors import OutputError
from medxlate.io.atomic import atomic_path, check_writable, refuse_foreign
from medxlate.io.nifti import write_nifti
from medxlate.io.volume import Volume
from medxlate.phantom.subject import PhantomConfig, Subject, make_subject, subject_id

FORMATS = ("nifti", "dicom")
COHORT_COLUMNS = ("id", "mr", "ct", "mask", "truth")
# Everything write_subject may put in a subject folder: images as NIfTI files or (with
# --format dicom) DICOM series folders, derived NIfTI images, truth.json.
IMAGE_NAMES = ("mr", "mr_t1", "mr_t2", "mr_pd", "mr_flair", "ct")
OWN_FILES = frozenset({*(f"{n}.nii.gz" for n in IMAGE_NAMES), "ct_on_mr.nii.gz",
                       "mask.nii.gz", "labels.nii.gz", "labels_ct.nii.gz",
                       "labels_source.nii.gz", "truth.json"})
# contrast -> (series name, file suffix of its mr_<suffix> copy when several are written)
CONTRAST_NAMES = {"t1w": ("T1w", "t1"), "t2w": ("T2w", "t2"), "pdw": ("PDw", "pd"),
                  "flair": ("FLAIR", "flair"), "random": ("random contrast", "random")}


def foreign_in_subject(folder: Path) -> list[str]:
    """Entries of an existing subject folder that ``medxlate phantom`` did not write.

    Ours: plain files named as in :data:`OWN_FILES`, and folders ``mr``, ``ct``, ``mr_t1``,
    ``mr_t2`` holding nothing but a DICOM series medxlate wrote. Anything else is listed
    (sub-folder entries as ``mr/NAME``).
    """
    foreign = []
    for entry in sorted(Path(folder).iterdir(), key=lambda p: p.name):
        if entry.is_symlink():
            foreign.append(entry.name)
        elif entry.is_file() and entry.name in OWN_FILES:
            continue
        elif entry.is_dir() and entry.name in IMAGE_NAMES:
            from medxlate.io.dicom_write import foreign_entries

            foreign += [f"{entry.name}/{name}" for name in foreign_entries(entry)]
        else:
            foreign.append(entry.name + ("/" if entry.is_dir() else ""))
    return foreign


def check_own_subject(folder: Path) -> None:
    """folder_check for ``--overwrite``: replace a subject folder only when everything in it
    is a file phantom writes; OutputError (exit 4) naming the others otherwise."""
    refuse_foreign(folder, foreign_in_subject(folder), "medxlate phantom",
                   "move those away or choose another --out")


def _alias(src: Path, dst: Path) -> None:
    """dst as a hard link of src (file) or a tree of hard links (folder); copy as fallback."""
    try:
        if src.is_dir():
            shutil.copytree(src, dst, copy_function=os.link)
        else:
            os.link(src, dst)
    except OSError:
        if dst.is_dir():
            shutil.rmtree(dst)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)


def _dicom_identity(subject: Subject, modality: str) -> Volume:
    """A stand-in reference carrying the patient and study of one phantom scan.

    MR and CT share the patient but not the study nor the frame of reference (they were
    acquired on different scanners, misaligned). UIDs derive from the subject's seed, so a
    regenerated subject gets the same study UIDs.
    """
    from pydicom.uid import generate_uid

    t = subject.truth
    key = [t["region"], str(t["seed"]), str(t["index"]), modality]
    meta = {"PatientName": f"PHANTOM^{subject.id.upper()}", "PatientID": subject.id,
            "StudyInstanceUID": generate_uid(entropy_srcs=[*key, "study"]),
            "FrameOfReferenceUID": generate_uid(entropy_srcs=[*key, "frame"]),
            "StudyDescription": f"medxlate phantom {modality}", "StudyID": "1",
            "PatientPosition": "HFS", "BodyPartExamined": t["region"].upper()}
    return Volume(np.zeros((1, 1, 1), np.float32), np.eye(4), modality, {"dicom": meta})


def _write_image(vol, folder: Path, name: str, fmt: str, series: str,
                 identity: Volume | None = None) -> str:
    if fmt == "dicom":
        from medxlate.io import write_volume

        write_volume(vol, folder / name, reference=identity, description=series)
        return name
    write_nifti(vol, folder / f"{name}.nii.gz", dtype=np.int16)
    return f"{name}.nii.gz"


def write_subject(subject: Subject, folder: Path | str, fmt: str = "nifti",
                  overwrite: bool = False) -> dict[str, str]:
    """Write one subject folder atomically; return its file names (relative to the folder)."""
    folder = Path(folder)
    files: dict[str, str] = {}
    with atomic_path(folder, overwrite, folder_check=check_own_subject) as tmp:
        tmp.mkdir()
        contrasts = list(subject.mr)
        names = {c: v[0] for c, v in CONTRAST_NAMES.items()}
        first = contrasts[0]
        mr_id, ct_id = _dicom_identity(subject, "MR"), _dicom_identity(subject, "CT")
        files["mr"] = _write_image(subject.mr[first], tmp, "mr", fmt,
                                   f"phantom MR {names[first]}", mr_id)
        if len(contrasts) > 1:
            suffix = files["mr"][2:]
            key = f"mr_{CONTRAST_NAMES[first][1]}"
            files[key] = f"{key}{suffix}"
            _alias(tmp / files["mr"], tmp / files[key])
            for c in contrasts[1:]:
                key = f"mr_{CONTRAST_NAMES[c][1]}"
                files[key] = _write_image(subject.mr[c], tmp, key, fmt,
                                          f"phantom MR {names[c]}", mr_id)
        files["ct"] = _write_image(subject.ct, tmp, "ct", fmt, "phantom CT", ct_id)
        if subject.ct_on_mr is not None:
            write_nifti(subject.ct_on_mr.with_array(np.rint(subject.ct_on_mr.array)),
                        tmp / "ct_on_mr.nii.gz", dtype=np.int16)
            files["ct_on_mr"] = "ct_on_mr.nii.gz"
        for key, vol in (("mask", subject.mask), ("labels", subject.labels),
                         ("labels_ct", subject.labels_ct)):
            write_nifti(vol, tmp / f"{key}.nii.gz", dtype=np.uint8)
            files[key] = f"{key}.nii.gz"
        if "labels_source" in subject.extra:  # a real map's own label values (up to 65535)
            write_nifti(subject.extra["labels_source"], tmp / "labels_source.nii.gz",
                        dtype=np.uint16)
            files["labels_source"] = "labels_source.nii.gz"
        truth = dict(subject.truth)
        truth["files"] = {**files, "mr_contrast": names[first],
                          "mask_grid": "mr", "labels_grid": "mr", "labels_ct_grid": "ct",
                          "ct_on_mr_grid": "mr"}
        files["truth"] = "truth.json"
        (tmp / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return files


def _one(config: PhantomConfig, seed: int, index: int, out: str, fmt: str,
         overwrite: bool) -> tuple[str, dict[str, str]]:
    if hasattr(config, "label_scheme"):  # a LabelPhantomConfig: subjects from real label maps
        from medxlate.phantom.label_subject import make_label_subject

        subject = make_label_subject(config, seed, index)
    else:
        subject = make_subject(config, seed, index)
    files = write_subject(subject, Path(out) / subject.id, fmt, overwrite)
    return subject.id, files


def plan_outputs(out: Path, n: int, region: str, overwrite: bool) -> list[Path]:
    """Every path a cohort run will create; OutputError if one exists without overwrite."""
    paths = [out / subject_id(region, i) for i in range(n)] + [out / "cohort.csv"]
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputError(f"{existing[0]} exists{more}; pass --overwrite to replace")
    for path in paths[:-1]:  # before any work: never delete what phantom did not write
        check_writable(path, True, folder_check=check_own_subject)
    check_writable(out / "cohort.csv", True)
    return paths


def generate_cohort(out: Path | str, n: int, config: PhantomConfig, seed: int,
                    fmt: str = "nifti", workers: int = 1, overwrite: bool = False,
                    on_done=None) -> list[dict[str, str]]:
    """Generate and write subjects 0..n-1 and ``out/cohort.csv``; return the csv rows.

    Args:
        out: output folder (created).
        n: number of subjects.
        config: what to generate.
        seed: cohort seed; subject i depends only on (seed, region, i).
        fmt: "nifti" or "dicom".
        workers: processes (1: in this process).
        overwrite: replace existing subject folders and cohort.csv.
        on_done: callback(subject_id) after each subject is written.
    """
    out = Path(out)
    plan_outputs(out, n, config.region, overwrite)
    results: dict[str, dict[str, str]] = {}
    if workers <= 1:
        for i in range(n):
            sid, files = _one(config, seed, i, str(out), fmt, overwrite)
            results[sid] = files
            if on_done:
                on_done(sid)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_one, config, seed, i, str(out), fmt, overwrite)
                       for i in range(n)]
            for fut in as_completed(futures):
                sid, files = fut.result()
                results[sid] = files
                if on_done:
                    on_done(sid)
    rows = []
    for sid in sorted(results):
        files = results[sid]
        rows.append({"id": sid, "mr": f"{sid}/{files['mr']}", "ct": f"{sid}/{files['ct']}",
                     "mask": f"{sid}/{files['mask']}", "truth": f"{sid}/{files['truth']}"})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COHORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(out / "cohort.csv", overwrite=True) as tmp:
        tmp.write_text(buf.getvalue())
    return rows
