"""The bench's cohort: a training dataset folder and the held-out subjects to score.

Three kinds (``cohort:`` in the spec):

- ``phantom``: training phantoms (seed, count) preprocessed into W/cohort/dataset with the CT
  the phantom resampled onto the MR grid through its true transform (no registration), and
  held-out phantoms of another seed; each held-out subject is scored on its own MR grid
  against ``ct_on_mr.nii.gz`` inside ``mask.nii.gz`` (as benchmarks/results_table.py did).
  With ``labels`` the phantoms are real anatomy (medxlate.bench.phantoms): training subjects
  from the training maps, held-out ones from the held-out maps; with several test contrasts
  each contrast gets its own training dataset (W/cohort/dataset-t1, -t2) for the reference rows.
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
    contrast: str | None = None      # the MR's contrast (t1, t2) when a cohort has several
    labels: Path | None = None       # the label map's own labels on the MR grid (real anatomy)

    def files(self, direction: str) -> tuple[Path, Path]:
        """(input, reference) for ``mr->ct`` or ``ct->mr``."""
        return (self.mr, self.ct) if direction == "mr->ct" else (self.ct, self.mr)


@dataclass
class Cohort:
    """``dataset``: what models train on; ``references``: the training dataset of each test
    contrast, for the reference rows (default: ``dataset``)."""

    dataset: Path
    tests: list[TestSubject]
    description: str
    references: dict[str | None, Path] | None = None

    @property
    def contrasts(self) -> list[str | None]:
        return list(dict.fromkeys(t.contrast for t in self.tests))

    def tests_of(self, contrast: str | None) -> list[TestSubject]:
        return [t for t in self.tests if t.contrast == contrast]

    def reference_dataset(self, contrast: str | None) -> Path:
        return (self.references or {}).get(contrast, self.dataset)


def check_cohort(cohort: dict) -> None:
    """Inputs a cohort reads that must exist before a bench writes anything (exit 3)."""
    if cohort["kind"] == "phantom" and cohort["phantom"].get("labels") is not None:
        from medxlate.bench.phantoms import check_labels

        check_labels(cohort["phantom"])


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


def _phantom(cohort: dict, folder: Path, echo) -> Cohort:
    from medxlate.bench import phantoms as P

    ph, test = cohort["phantom"], cohort["test"]
    real = P.is_real_anatomy(ph)
    if real:
        P.check_labels(ph)
    train_contrast, test_contrasts = P.contrasts(cohort)
    wanted = tuple(dict.fromkeys([train_contrast, *test_contrasts]))
    n_train, n_val, seed = int(ph["train"]), int(ph.get("val", 0)), int(ph.get("seed", 0))
    config = P.make_config(ph, "train", wanted, ph)
    region = "brain" if real else config.region          # preprocess's preset for heads
    datasets: dict[str | None, Path] = {}
    for contrast in wanted:     # one dataset per contrast, of the same training subjects
        dataset = folder / ("dataset" if contrast is None else f"dataset-{contrast}")
        datasets[contrast] = dataset
        if (dataset / "dataset.json").is_file():
            continue
        echo(f"bench: generating {n_train + n_val} training phantom(s), seed {seed}"
             + (" (training label maps)" if real else ""))
        subs = P.generate(folder / "train", config, seed, list(range(n_train + n_val)))
        rows = [{"id": s.name, "mr": str(P.mr_file(s.resolve(), contrast)),
                 "ct": str(s.resolve() / "ct_on_mr.nii.gz"),
                 "mask": str(s.resolve() / "mask.nii.gz"),
                 "split": "train" if i < n_train else "val"}
                for i, s in enumerate(subs)]
        csv_path = folder / ("train.csv" if contrast is None else f"train-{contrast}.csv")
        _write_csv(csv_path, rows)
        _preprocess(csv_path, dataset, cohort, region, echo)
    test_config = P.make_config(ph, "held-out", test_contrasts,
                                {k: v for k, v in {**ph, **test}.items()
                                 if k in ("spacing", "size")})
    echo(f"bench: held-out phantoms seed {test.get('seed', 0)}, subjects {test['subjects']}")
    subs = P.generate(folder / "test", test_config, int(test.get("seed", 0)), test["subjects"])
    tests = [TestSubject(s.name, P.mr_file(s, c), s / "ct_on_mr.nii.gz", s / "mask.nii.gz",
                         contrast=c, labels=(s / "labels_source.nii.gz"
                                             if (s / "labels_source.nii.gz").is_file() else None))
             for c in test_contrasts for s in subs]
    shown = ", ".join(f"{c.upper()}w" for c in test_contrasts if c)
    scored = f"{shown} input(s), " if shown else ""
    if real:
        train_maps, held_maps = P.map_names(ph, "train"), P.map_names(ph, "held-out")
        what = (f"real anatomy ({ph['labels']}, scheme {ph.get('scheme', 'synthseg')}): train "
                f"seed {seed} x {n_train} (+{n_val} val) from the {len(train_maps)} training "
                f"maps {train_maps[0]}..{train_maps[-1]}, held out seed {test.get('seed', 0)} "
                f"subjects {test['subjects']} from the held-out maps {', '.join(held_maps)}")
    else:
        what = (f"phantoms ({config.region}): train seed {seed} x {n_train} (+{n_val} val), "
                f"held out seed {test.get('seed', 0)} subjects {test['subjects']}")
    return Cohort(datasets[train_contrast], tests, f"{what}, {scored}scored on each MR grid",
                  references=datasets)


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
