"""Constructed dataset folders and held-out subjects for the bench tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from medxlate.bench.cohort import Cohort, TestSubject
from medxlate.bench.runner import Bench
from medxlate.bench.spec import parse_spec
from medxlate.io.nifti import write_nifti
from medxlate.io.volume import Volume

CT_WINDOW = {"kind": "window", "low": -1024.0, "high": 3000.0}
MR_PERCENTILE = {"kind": "percentile", "low_pct": 0.5, "high_pct": 99.5}


def write_images(folder: Path, mr: np.ndarray, ct: np.ndarray, mask: np.ndarray,
                 spacing=(1.0, 1.0, 1.0)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    affine = np.diag([*spacing, 1.0])
    write_nifti(Volume(mr.astype(np.float32), affine, "MR"), folder / "mr.nii.gz")
    write_nifti(Volume(ct.astype(np.float32), affine, "CT"), folder / "ct.nii.gz")
    write_nifti(Volume(mask.astype(np.float32), affine), folder / "mask.nii.gz", dtype=np.uint8)


def write_dataset(root: Path, train: list[dict]) -> Path:
    """dataset.json + subjects/<id>/{mr,ct,mask}.nii.gz; each dict: mr, ct, mask, mr_norm."""
    subjects = []
    for i, s in enumerate(train):
        sid = f"sub-{i:03d}"
        write_images(root / "subjects" / sid, s["mr"], s["ct"], s["mask"])
        subjects.append({"id": sid, "split": "train", "modalities": ["mr", "ct"],
                         "shape": list(s["mr"].shape), "mr_norm": s["mr_norm"]})
    info = {"format": "medxlate-dataset/1", "region": "test", "paired": True,
            "spacing_mm": [1.0, 1.0, 1.0], "slice_axis": 2, "slice_size": [16, 16],
            "normalisation": {"ct": CT_WINDOW, "mr": MR_PERCENTILE}, "subjects": subjects}
    (root / "dataset.json").write_text(json.dumps(info))
    return root


def held_out(folder: Path, sid: str, mr, ct, mask, spacing=(1.0, 1.0, 1.0)) -> TestSubject:
    write_images(folder / sid, mr, ct, mask, spacing)
    return TestSubject(sid, folder / sid / "mr.nii.gz", folder / sid / "ct.nii.gz",
                       folder / sid / "mask.nii.gz")


def bench_on(dataset: Path, tests: list[TestSubject], workdir: Path, bins: int = 64) -> Bench:
    spec = parse_spec({"cohort": {"dataset": str(dataset)}, "bins": bins,
                       "models": [{"model": "pix2pix", "steps": 1}]}, workdir / "spec.yaml")
    bench = Bench(spec, workdir, echo=lambda line: None)
    bench.cohort = Cohort(dataset, tests, "constructed")
    return bench
