"""`medxlate phantom` through the CLI: files, cohort.csv, determinism, exit codes, preview."""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.io import read_volume
from medxlate.phantom import load_truth

SMALL = ["--size", "40", "48", "36", "--spacing", "4", "4", "4"]
runner = CliRunner()


def _run(*args):
    return runner.invoke(app, ["phantom", *args])


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort")
    res = _run("--out", str(out), "--subjects", "2", "--seed", "7", "--contrast", "both", *SMALL)
    assert res.exit_code == 0, res.output
    return out


def test_cohort_layout_and_csv(cohort):
    with open(cohort / "cohort.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["brain-000", "brain-001"]
    assert list(rows[0]) == ["id", "mr", "ct", "mask", "truth"]
    for r in rows:
        for key in ("mr", "ct", "mask", "truth"):
            assert (cohort / r[key]).is_file()
    folder = cohort / "brain-000"
    names = {p.name for p in folder.iterdir()}
    assert names == {"mr.nii.gz", "mr_t1.nii.gz", "mr_t2.nii.gz", "ct.nii.gz", "ct_on_mr.nii.gz",
                     "mask.nii.gz", "labels.nii.gz", "labels_ct.nii.gz", "truth.json"}
    truth = load_truth(folder)
    assert truth["files"]["mr_contrast"] == "T1w" and truth["files"]["mask_grid"] == "mr"
    mr = read_volume(folder / "mr.nii.gz")
    assert mr.shape == (40, 48, 36) and mr.spacing == (4.0, 4.0, 4.0)
    assert np.array_equal(mr.array, read_volume(folder / "mr_t1.nii.gz").array)
    assert not np.array_equal(mr.array, read_volume(folder / "mr_t2.nii.gz").array)
    for name, grid in (("mask", "mr"), ("labels", "mr"), ("ct_on_mr", "mr"), ("ct", "ct"),
                       ("labels_ct", "ct")):
        vol = read_volume(folder / f"{name}.nii.gz")
        assert np.allclose(vol.affine, truth["grids"][grid]["affine"]), name
    ct = read_volume(folder / "ct.nii.gz")
    assert ct.array.min() >= -1024 and ct.array.max() > 1000  # bone is in the CT
    assert np.array_equal(ct.array, np.rint(ct.array))


def test_same_seed_identical_files_different_seed_different_anatomy(cohort, tmp_path):
    res = _run("--out", str(tmp_path), "--subjects", "1", "--seed", "7", "--contrast", "t1",
               *SMALL)
    assert res.exit_code == 0, res.output
    a, b = cohort / "brain-000", tmp_path / "brain-000"
    for name in ("mr.nii.gz", "ct.nii.gz", "labels.nii.gz", "labels_ct.nii.gz", "mask.nii.gz",
                 "ct_on_mr.nii.gz"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    other = read_volume(cohort / "brain-001" / "labels.nii.gz").array
    same = read_volume(a / "labels.nii.gz").array
    assert (other != same).mean() > 0.05
    ta, tb = load_truth(a), load_truth(cohort / "brain-001")
    assert ta["anatomy"]["parameters"] != tb["anatomy"]["parameters"]
    assert ta["transform"]["mr_to_ct"] != tb["transform"]["mr_to_ct"]


def test_workers_give_the_same_subjects(cohort, tmp_path):
    res = _run("--out", str(tmp_path), "--subjects", "2", "--seed", "7", "--contrast", "both",
               "--workers", "2", *SMALL)
    assert res.exit_code == 0, res.output
    for sid in ("brain-000", "brain-001"):
        for name in ("mr_t2.nii.gz", "ct.nii.gz"):
            assert (cohort / sid / name).read_bytes() == (tmp_path / sid / name).read_bytes()


@pytest.mark.parametrize("args,code,message", [
    (["--subjects", "0"], 2, "--subjects"),
    (["--region", "knee"], 2, "--region"),
    (["--contrast", "pd"], 2, "--contrast"),
    (["--format", "png"], 2, "--format"),
    (["--size", "4", "40", "40"], 2, "--size"),
    (["--spacing", "0", "1", "1"], 2, "--spacing"),
    (["--misalign-deg", "-1"], 2, "--misalign-deg"),
    (["--workers", "0"], 2, "--workers"),
    (["--spacing", "0.2", "0.2", "0.2"], 2, "million voxels"),
])
def test_bad_options_exit_2(tmp_path, args, code, message):
    res = _run("--out", str(tmp_path / "o"), *args)
    assert res.exit_code == code
    assert message in res.output
    assert not (tmp_path / "o").exists()


def test_existing_output_needs_overwrite(cohort):
    before = (cohort / "brain-000" / "ct.nii.gz").read_bytes()
    res = _run("--out", str(cohort), "--subjects", "1", "--seed", "8", *SMALL)
    assert res.exit_code == 4 and "--overwrite" in res.output
    assert (cohort / "brain-000" / "ct.nii.gz").read_bytes() == before


def test_overwrite_pelvis_flip_and_preview(tmp_path):
    args = ["--out", str(tmp_path), "--region", "pelvis", "--flip", "--contrast", "t2",
            "--size", "48", "40", "16", "--spacing", "8", "8", "12", "--preview",
            str(tmp_path / "p.png"), "--misalign-deg", "3", "--misalign-mm", "2"]
    assert _run(*args).exit_code == 0
    res = _run(*args, "--overwrite", "--seed", "3", "--no-ct-on-mr")
    assert res.exit_code == 0, res.output
    truth = json.loads((tmp_path / "pelvis-000" / "truth.json").read_text())
    assert truth["seed"] == 3 and truth["transform"]["flip_axis"] in ("x", "y")
    assert truth["files"]["mr_contrast"] == "T2w" and "ct_on_mr" not in truth["files"]
    assert not (tmp_path / "pelvis-000" / "ct_on_mr.nii.gz").exists()
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.linalg.norm(truth["transform"]["translation_mm"]) <= 2


def test_dicom_output_rereads_with_the_same_geometry_and_values(cohort, tmp_path):
    res = _run("--out", str(tmp_path), "--subjects", "1", "--seed", "7", "--contrast", "both",
               "--format", "dicom", *SMALL)
    assert res.exit_code == 0, res.output
    folder, nifti = tmp_path / "brain-000", cohort / "brain-000"
    truth = load_truth(folder)
    with open(tmp_path / "cohort.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert row["mr"] == "brain-000/mr" and row["ct"] == "brain-000/ct"
    ids = set()
    for series, grid, reference, modality in (("mr", "mr", "mr.nii.gz", "MR"),
                                              ("mr_t2", "mr", "mr_t2.nii.gz", "MR"),
                                              ("ct", "ct", "ct.nii.gz", "CT")):
        vol = read_volume(folder / series)
        assert vol.modality == modality
        assert np.allclose(vol.affine, truth["grids"][grid]["affine"], atol=1e-4)
        assert np.array_equal(vol.array, read_volume(nifti / reference).array), series
        ids.add(vol.meta["dicom"]["PatientID"])
    assert ids == {"brain-000"}
