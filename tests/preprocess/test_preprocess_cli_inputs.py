"""`medxlate preprocess` on real DICOM, unpaired folders, and bad inputs (exit codes)."""

import json

import nibabel as nib
import numpy as np
from preprocess_synthetic import FAST, write_pair
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.preprocess import load_dataset


def _run(*args):
    return CliRunner().invoke(app, ["preprocess", *map(str, args)])


def _one_line_error(result):
    lines = [ln for ln in result.output.splitlines() if ln.startswith("medxlate: error:")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_real_mridir_flip_is_found(mridir, tmp_path):
    """Real GE CT and T2 MR of a porcine specimen turned over between the scans."""
    out = tmp_path / "real"
    result = _run("--mri", mridir / "mr_t2", "--ct", mridir / "ct", "-o", out, "--id", "pig")
    assert result.exit_code == 0, result.output
    s = load_dataset(out).subject("pig")
    reg = s["registration"]
    search = reg["init_search"]
    assert search["best"] != "identity" and search["best"].startswith("180 deg")
    assert search["best_mi"] > search["identity_mi"] + 0.05  # clearly better than identity
    assert reg["mi_final"] > 3 * reg["mi_identity"]
    assert 170.0 < reg["rigid"]["rotation_deg"] <= 180.0
    ct = nib.load(out / "subjects" / "pig" / "ct.nii.gz").get_fdata()
    mask = nib.load(out / "subjects" / "pig" / "mask.nii.gz").get_fdata() > 0
    assert ct[~mask].max() == -1024.0
    # no voxel interpolated from the -2048 HU padding outside the reconstruction circle (33
    # voxels between -1500 and -1024 HU inside the mask before padding left the FOV)
    assert ct[mask].min() >= -1024.0
    assert 20.0 < np.median(ct[mask]) < 120.0  # muscle/soft tissue in HU, not raw values
    assert s["spacing_mm"] == [1.0, 1.0, 1.0]


def test_unpaired_folders(tmp_path):
    write_pair(tmp_path / "a")
    write_pair(tmp_path / "b", seed=1)
    mri_dir, ct_dir = tmp_path / "mri", tmp_path / "ct"
    mri_dir.mkdir()
    ct_dir.mkdir()
    (tmp_path / "a" / "mr.nii.gz").rename(mri_dir / "s1.nii.gz")
    (tmp_path / "b" / "ct.nii.gz").rename(ct_dir / "s2.nii.gz")
    result = _run("--mri-dir", mri_dir, "--ct-dir", ct_dir, "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 0, result.output
    ds = load_dataset(tmp_path / "out")
    assert ds.info["paired"] is False
    assert [s["id"] for s in ds.subjects()] == ["mr-s1", "ct-s2"]
    assert set(ds.shard("mr-s1")) == {"mr", "mr_edges", "mask", "keep", "index"}
    assert set(ds.shard("ct-s2")) == {"ct", "ct_edges", "mask", "keep", "index"}
    assert "registration" not in ds.subject("ct-s2")


def test_partial_failure_exit_8_and_split_from_csv(tmp_path):
    write_pair(tmp_path / "good")
    csv = tmp_path / "cohort.csv"
    csv.write_text("id,mri,ct,split\ngood,good/mr.nii.gz,good/ct.nii.gz,test\n"
                   "bad,good/mr.nii.gz,,train\n")
    result = _run("--cohort", csv, "-o", tmp_path / "out", *FAST, "--skip", "register")
    assert result.exit_code == 8, result.output
    assert "1 of 2 subjects failed: bad" in _one_line_error(result)
    info = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert [(s["id"], s["split"]) for s in info["subjects"]] == [("good", "test")]
    assert info["failed"][0]["id"] == "bad"
    assert "no CT (column 'ct' is empty)" in info["failed"][0]["error"]
    assert not (tmp_path / "out" / "subjects" / "bad").exists()
    assert not (tmp_path / "out" / ".work").exists()


def test_missing_modality_in_cohort_row(tmp_path):
    write_pair(tmp_path / "s")
    csv = tmp_path / "c.csv"
    csv.write_text("id,mri,ct\ns,s/mr.nii.gz,\n")
    result = _run("--cohort", csv, "-o", tmp_path / "out")
    assert result.exit_code == 3
    assert _one_line_error(result) == "medxlate: error: s: no CT (column 'ct' is empty)"


def test_missing_modality_in_cohort_folder(tmp_path):
    write_pair(tmp_path / "root" / "s1")
    (tmp_path / "root" / "s1" / "ct.nii.gz").unlink()
    result = _run("--cohort", tmp_path / "root", "-o", tmp_path / "out")
    assert result.exit_code == 3
    assert "s1: no CT image in" in _one_line_error(result)


def test_non_overlapping_mr_ct(tmp_path):
    write_pair(tmp_path / "s")
    ct = nib.load(tmp_path / "s" / "ct.nii.gz")
    far = ct.affine.copy()
    far[0, 3] += 400.0  # the CT's field of view 40 cm away from the MR's
    nib.save(nib.Nifti1Image(ct.get_fdata(dtype=np.float32), far), tmp_path / "s" / "ct.nii.gz")
    result = _run("--mri", tmp_path / "s" / "mr.nii.gz", "--ct", tmp_path / "s" / "ct.nii.gz",
                  "-o", tmp_path / "out", *FAST, "--skip", "register")
    assert result.exit_code == 3
    assert "MR and CT do not overlap" in _one_line_error(result)
    assert "covers 0%" in result.output
    assert not (tmp_path / "out" / "dataset.json").exists()


def test_2d_image(tmp_path):
    write_pair(tmp_path / "s")
    flat = nib.Nifti1Image(np.ones((32, 32), np.float32), np.eye(4))
    nib.save(flat, tmp_path / "flat.nii.gz")
    result = _run("--mri", tmp_path / "flat.nii.gz", "--ct", tmp_path / "s" / "ct.nii.gz",
                  "-o", tmp_path / "out")
    assert result.exit_code == 3
    assert "2D" in _one_line_error(result)


def test_zero_size_mask(tmp_path):
    write_pair(tmp_path / "s")
    mr = nib.load(tmp_path / "s" / "mr.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros(mr.shape, np.uint8), mr.affine), tmp_path / "m.nii.gz")
    result = _run("--mri", tmp_path / "s" / "mr.nii.gz", "--ct", tmp_path / "s" / "ct.nii.gz",
                  "--mask", tmp_path / "m.nii.gz", "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 3
    assert "the mask is empty (zero voxels)" in _one_line_error(result)


def test_usage_errors(tmp_path):
    write_pair(tmp_path / "s")
    mr, ct = tmp_path / "s" / "mr.nii.gz", tmp_path / "s" / "ct.nii.gz"
    assert _run("--mri", mr, "-o", tmp_path / "o").exit_code == 2
    assert _run("--mri", mr, "--ct", ct, "--cohort", tmp_path, "-o", tmp_path / "o").exit_code == 2
    bad = _run("--mri", mr, "--ct", ct, "-o", tmp_path / "o", "--skip", "read")
    assert bad.exit_code == 2 and "--skip read" in _one_line_error(bad)
    assert _run("--mri", mr, "--ct", ct, "-o", tmp_path / "o", "--set", "x=1").exit_code == 2
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    busy = _run("--mri", mr, "--ct", ct, "-o", tmp_path / "busy")
    assert busy.exit_code == 4 and "not empty" in _one_line_error(busy)
