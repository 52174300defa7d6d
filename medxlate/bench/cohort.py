"""The bench's cohort: a training dataset folder and the held-out subjects to score.

Three kinds (``cohort:`` in the spec):

- ``phantom``: training phantoms (seed, count) preprocessed into W/cohort/dataset with the CT
  the phantom resampled onto the MR grid through its true transform (no registration), and
  held-out phantoms of another seed; each held-out subject is scored on its own MR grid
  against ``ct_on_mr.nii.gz`` inside ``mask.nii.gz`` (as benchmarks/results_table.py did).
- ``dataset``: a folder written by ``medxlate preprocess``: train on its train split, score
  its ``test_split`` subjects (default ``test``) on the dataset grid.
- ``layout``: a SynthRAD-layout folder (``<id>/mr.*``, ``ct.*``, ``mask.*``; pairs already
  registered): preprocessed into W/cohort/dataset without registration (spec ``split`` and
  ``preprocess`` settings apply); the ``test_split`` subjects are scored on their original
  files.

Everything is written under W/cohort and is reused when already complete (resumable).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from medxlate.errors import InputError
from medxlate.io.atomic import atomic_path


@dataclass
class TestSubject:
    """One held-out subject: its MR and CT files (on one grid) and body mask."""

    __test__ = False          # not a pytest test class, despite the name

    id: str
    mr: Path
    ct: Path
    mask: Path | None

    def files(self, direction: str) -> tuple[Path, Path]:
        """(input, reference) for ``mr->ct`` or ``ct->mr``."""
        return (self.mr, self.ct) if direction == "mr->ct" else (self.ct, self.mr)


@dataclass
class Cohort:
    dataset: Path
    tests: list[TestSubject]
    description: str


def prepare_cohort(cohort: dict, folder: Path, echo=print) -> Cohort:
    kind = cohort["kind"]
    if kind == "phantom":
        return _phantom(cohort, folder, echo)
    if kind == "dataset":
        return _dataset_cohort(Path(cohort["dataset"]), cohort.get("test_split", "test"))
    return _layout(cohort, folder, echo)


def _dataset_tests(root: Path, split: str) -> list[TestSubject]:
    from medxlate.preprocess.dataset import load_dataset

    ds = load_dataset(root)
    tests = []
    for s in ds.subjects(split):
        base = root / "subjects" / s["id"]
        mask = base / "mask.nii.gz"
        tests.append(TestSubject(s["id"], base / "mr.nii.gz", base / "ct.nii.gz",
                                 mask if mask.is_file() else None))
    if not tests:
        raise InputError(f"{root}: no subjects in split {split!r} to hold out")
    if not ds.subjects("train"):
        raise InputError(f"{root}: no subjects in split 'train' to train on")
    return tests


def _dataset_cohort(root: Path, split: str) -> Cohort:
    if not (root / "dataset.json").is_file():
        raise InputError(f"{root}: dataset not found (no dataset.json)")
    tests = _dataset_tests(root, split)
    return Cohort(root, tests, f"dataset {root} (held out: split {split}, "
                  f"{len(tests)} subject(s), dataset grid)")


def _preprocess(csv_path: Path, out: Path, cohort: dict, region: str, echo) -> None:
    """`medxlate preprocess --cohort CSV --skip register` through the library (resumable)."""
    from medxlate.preprocess.config import build_config
    from medxlate.preprocess.inputs import discover
    from medxlate.preprocess.run import raise_for_failures, run

    overrides = ["steps.register.enabled=false", *cohort["preprocess"]]
    split = cohort.get("split") or {}
    for key in ("seed", "fractions"):
        if key in split:
            overrides.append(f"split.{key}={split[key]}")
    cfg = build_config(region, None, overrides)
    subjects, paired = discover(cohort=csv_path)
    echo(f"bench: preprocessing {len(subjects)} training subject(s) -> {out}")
    result = run(subjects, paired, cfg, out)
    raise_for_failures(result, len(subjects))


def _write_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    if path.is_file() and path.read_text() == buf.getvalue():
        return
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(buf.getvalue())


def _phantoms(folder: Path, config, seed: int, indices: list[int]) -> list[Path]:
    from medxlate.phantom import make_subject, subject_id
    from medxlate.phantom.cohort import write_subject

    out = []
    for index in indices:
        sub = folder / subject_id(config.region, index)
        if not (sub / "truth.json").is_file():     # write_subject is atomic: all or nothing
            write_subject(make_subject(config, seed, index), sub)
        out.append(sub)
    return out


def _phantom_config(ph: dict):
    from medxlate.phantom import PhantomConfig
    from medxlate.phantom.subject import check_config

    config = PhantomConfig(region=ph.get("region", "brain"),
                           size=tuple(ph["size"]) if ph.get("size") else None,
                           spacing=tuple(ph["spacing"]) if ph.get("spacing") else None)
    check_config(config)
    return config


def _phantom(cohort: dict, folder: Path, echo) -> Cohort:
    ph, test = cohort["phantom"], cohort["test"]
    config = _phantom_config(ph)
    n_train, n_val = int(ph["train"]), int(ph.get("val", 0))
    dataset = folder / "dataset"
    if not (dataset / "dataset.json").is_file():
        echo(f"bench: generating {n_train + n_val} training phantom(s), seed {ph.get('seed', 0)}")
        subs = _phantoms(folder / "train", config, int(ph.get("seed", 0)),
                         list(range(n_train + n_val)))
        rows = [{"id": s.name, "mr": str(s.resolve() / "mr.nii.gz"),
                 "ct": str(s.resolve() / "ct_on_mr.nii.gz"),
                 "mask": str(s.resolve() / "mask.nii.gz"),
                 "split": "train" if i < n_train else "val"}
                for i, s in enumerate(subs)]
        _write_csv(folder / "train.csv", rows)
        _preprocess(folder / "train.csv", dataset, cohort, config.region, echo)
    test_config = _phantom_config({**ph, **{k: v for k, v in test.items()
                                           if k in ("spacing", "size")}})
    echo(f"bench: held-out phantoms seed {test.get('seed', 0)}, subjects {test['subjects']}")
    subs = _phantoms(folder / "test", test_config, int(test.get("seed", 0)), test["subjects"])
    tests = [TestSubject(s.name, s / "mr.nii.gz", s / "ct_on_mr.nii.gz", s / "mask.nii.gz")
             for s in subs]
    return Cohort(dataset, tests, f"phantoms ({config.region}): train seed "
                  f"{ph.get('seed', 0)} x {n_train} (+{n_val} val), held out seed "
                  f"{test.get('seed', 0)} subjects {test['subjects']}, scored on each MR grid")


def _layout(cohort: dict, folder: Path, echo) -> Cohort:
    from medxlate.preprocess.inputs import cohort_folder

    root = Path(cohort["layout"])
    if not root.is_dir():
        raise InputError(f"cohort layout {root}: not a folder")
    subjects = cohort_folder(root)
    bad = [s for s in subjects if s.problem]
    if bad:
        raise InputError(bad[0].problem)
    dataset = folder / "dataset"
    if not (dataset / "dataset.json").is_file():
        rows = [{"id": s.id, "mr": str(s.mr.resolve()), "ct": str(s.ct.resolve()),
                 **({"mask": str(s.mask.resolve())} if s.mask else {})} for s in subjects]
        if any("mask" not in r for r in rows):
            rows = [{k: v for k, v in r.items() if k != "mask"} for r in rows]
        _write_csv(folder / "layout.csv", rows)
        _preprocess(folder / "layout.csv", dataset, cohort, cohort.get("region", "brain"), echo)
    split = cohort.get("test_split", "test")
    held = {t.id for t in _dataset_tests(dataset, split)}
    tests = [TestSubject(s.id, s.mr, s.ct, s.mask) for s in subjects if s.id in held]
    return Cohort(dataset, tests, f"layout {root} (held out: split {split}, {len(tests)} "
                  "subject(s), original files)")
