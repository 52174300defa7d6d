"""`medxlate evaluate` end to end on phantom cohorts: reports, plots, gates, exit codes."""

import csv
import json
import shutil

import numpy as np
import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.io import read_volume, write_volume
from tests.evaluate.eval_reference import ref_ssim

runner = CliRunner()
IDS = ["brain-000", "brain-001", "brain-002"]
OFFSETS = [10.0, 20.0, 30.0]


def _run(*args):
    return runner.invoke(app, ["evaluate", *[str(a) for a in args]])


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """3 tiny phantoms; predictions = reference + 10/20/30 HU inside the mask; pairs.csv."""
    root = tmp_path_factory.mktemp("eval")
    res = runner.invoke(app, ["phantom", "--out", str(root / "ph"), "--subjects", "3",
                              "--size", "40", "44", "36", "--spacing", "4", "4", "4"])
    assert res.exit_code == 0, res.output
    (root / "pred").mkdir()
    rows = ["id,pred,ref,mask,labels,source"]
    for sid, off in zip(IDS, OFFSETS):
        ct = read_volume(root / "ph" / sid / "ct_on_mr.nii.gz")
        mask = read_volume(root / "ph" / sid / "mask.nii.gz").array > 0
        write_volume(ct.with_array(np.where(mask, ct.array + off, ct.array)),
                     root / "pred" / f"{sid}.nii.gz")
        rows.append(f"{sid},pred/{sid}.nii.gz,ph/{sid}/ct_on_mr.nii.gz,ph/{sid}/mask.nii.gz,"
                    f"ph/{sid}/labels.nii.gz,ph/{sid}/mr.nii.gz")
    (root / "pairs.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def reports(cohort):
    out = cohort / "reports"
    res = _run("--pairs", cohort / "pairs.csv", "--out", out / "r.json", "--csv", out / "r.csv",
               "--markdown", out / "r.md", "--plots", out / "plots", "--fail-if", "mae>80")
    assert res.exit_code == 0, res.output
    return out, res.output


def test_json_report_values(cohort, reports):
    out, _ = reports
    report = json.loads((out / "r.json").read_text())
    assert report["medxlate"] == "0.1.0" and report["modality"] == "CT"
    assert report["settings"]["hu_range"] == [-1024.0, 3000.0]
    assert "7x7x7" in report["definitions"]["ssim"] and "97" in report["definitions"]["ms_ssim"]
    subjects = {s["id"]: s for s in report["subjects"]}
    assert sorted(subjects) == IDS
    for sid, off in zip(IDS, OFFSETS):
        m = subjects[sid]["metrics"]
        assert m["mae"] == pytest.approx(off, abs=1e-3)
        assert m["me"] == pytest.approx(off, abs=1e-3)
        assert m["mae_label_1"] == pytest.approx(off, abs=1e-3)
        assert subjects[sid]["mask_origin"] == "file"
    s = report["summary"]["mae"]
    assert (s["n"], s["mean"], s["std"], s["median"], s["iqr"], s["min"], s["max"]) == \
        pytest.approx((3, 20.0, 10.0, 20.0, 10.0, 10.0, 30.0), abs=1e-3)
    # SSIM in the report equals the skimage reference on the files
    ref = read_volume(cohort / "ph" / "brain-001" / "ct_on_mr.nii.gz").array
    pred = read_volume(cohort / "pred" / "brain-001.nii.gz").array
    mask = read_volume(cohort / "ph" / "brain-001" / "mask.nii.gz").array > 0
    assert abs(subjects["brain-001"]["metrics"]["ssim"] - ref_ssim(pred, ref, mask)[0]) < 1e-6
    assert report["gates"] == {"expressions": ["mae>80"], "failures": []}


def test_csv_and_markdown(reports):
    out, screen = reports
    with open(out / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == IDS
    assert [float(r["mae"]) for r in rows] == pytest.approx(OFFSETS, abs=1e-3)
    assert list(rows[0])[:7] == ["id", "mae", "me", "psnr", "ssim", "ms_ssim", "nmse"]
    md = (out / "r.md").read_text()
    assert "| brain-001 | 20.00 | 20.00 |" in md
    assert "| **mean ± std** | 20.00 ± 10.00 | 20.00 ± 10.00 |" in md
    assert "| **median [Q1, Q3]** | 20.00 [15.00, 25.00] |" in md
    assert "brain-002" in screen and "MS-SSIM" in screen


def test_plots(reports):
    out, _ = reports
    plots = out / "plots"
    for sid in IDS:
        image = imread(plots / f"{sid}.png")
        assert image.shape[0] > 600 and image.shape[1] > 1000  # 3 rows x 4 columns
    for name in ("mae", "psnr", "ssim", "ms_ssim"):
        assert imread(plots / f"boxplot_{name}.png").shape[0] > 300
    assert not [p for p in plots.iterdir() if p.name.startswith(".")]  # no temporaries left


@pytest.mark.parametrize("gates,code", [(["mae>25"], 6), (["mae>80", "ssim<0.5"], 0),
                                        (["psnr<45"], 6), (["mae>>3"], 2), (["hu>3"], 2)])
def test_fail_if_exit_codes(cohort, gates, code):
    args = [x for g in gates for x in ("--fail-if", g)]
    res = _run("--pairs", cohort / "pairs.csv", *args)
    assert res.exit_code == code, res.output
    if code == 6:
        assert "brain-002" in res.output and "brain-000" not in res.output.split("error:")[-1]


def test_gate_failure_still_writes_reports(cohort, tmp_path):
    res = _run("--pairs", cohort / "pairs.csv", "--out", tmp_path / "r.json", "--fail-if",
               "mae>15")
    assert res.exit_code == 6
    report = json.loads((tmp_path / "r.json").read_text())
    assert {f["id"] for f in report["gates"]["failures"]} == {"brain-001", "brain-002"}


def test_folders_matched_by_id_synthrad_layout(cohort, tmp_path):
    ref_dir = tmp_path / "ref"
    for sid in IDS[:2]:
        (ref_dir / sid).mkdir(parents=True)
        shutil.copy(cohort / "ph" / sid / "ct_on_mr.nii.gz", ref_dir / sid / "ct.nii.gz")
        shutil.copy(cohort / "ph" / sid / "mask.nii.gz", ref_dir / sid / "mask.nii.gz")
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    for sid in IDS[:2]:
        shutil.copy(cohort / "pred" / f"{sid}.nii.gz", pred_dir / f"{sid}.nii.gz")
    res = _run("--pred", pred_dir, "--ref", ref_dir, "--out", tmp_path / "r.json")
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert [s["metrics"]["mae"] for s in report["subjects"]] == pytest.approx([10, 20], abs=1e-3)
    assert all(s["mask"].endswith("mask.nii.gz") for s in report["subjects"])


def test_geometry_mismatch_names_both_unless_resampled(cohort, tmp_path):
    ref = cohort / "ph" / "brain-000" / "ct_on_mr.nii.gz"
    pred = cohort / "ph" / "brain-000" / "ct.nii.gz"  # the CT on its own grid
    res = _run("--pred", pred, "--ref", ref, "--mask", cohort / "ph" / "brain-000" / "mask.nii.gz")
    assert res.exit_code == 3
    assert "ct.nii.gz" in res.output and "ct_on_mr.nii.gz" in res.output
    assert "differ in" in res.output and "--resample-to-ref" in res.output
    res = _run("--pred", pred, "--ref", ref, "--mask", cohort / "ph" / "brain-000" / "mask.nii.gz",
               "--resample-to-ref", "--out", tmp_path / "r.json")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "r.json").read_text())["settings"]["resample_to_ref"] is True


def test_single_pair_body_mask_from_reference(cohort, tmp_path):
    from medxlate.preprocess.mask import body_mask

    ref = cohort / "ph" / "brain-002" / "ct_on_mr.nii.gz"
    res = _run("--pred", cohort / "pred" / "brain-002.nii.gz", "--ref", ref, "--out",
               tmp_path / "r.json", "--hu-range", "-1024", "3071")
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "r.json").read_text())["subjects"][0]
    assert record["mask_origin"].startswith("computed from the reference")
    assert record["n_mask_voxels"] == int(body_mask(read_volume(ref, modality="CT"), "CT").sum())
    assert record["range"] == [-1024.0, 3071.0]


def test_existing_output_and_partial_failure(cohort, tmp_path):
    existing = tmp_path / "r.json"
    existing.write_text("keep")
    res = _run("--pairs", cohort / "pairs.csv", "--out", existing)
    assert res.exit_code == 4 and existing.read_text() == "keep"
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"")
    lines = (cohort / "pairs.csv").read_text().splitlines()
    lines[2] = lines[2].replace("pred/brain-001.nii.gz", str(bad))
    (tmp_path / "pairs.csv").write_text("\n".join(lines).replace("ph/", f"{cohort}/ph/")
                                        .replace(",pred/", f",{cohort}/pred/") + "\n")
    res = _run("--pairs", tmp_path / "pairs.csv", "--out", tmp_path / "p.json")
    assert res.exit_code == 8, res.output
    report = json.loads((tmp_path / "p.json").read_text())
    assert [f["id"] for f in report["failed"]] == ["brain-001"]
    assert [s["id"] for s in report["subjects"]] == ["brain-000", "brain-002"]


def test_too_thin_volume_is_input_error(tmp_path):
    from medxlate.io import Volume

    vol = Volume(np.zeros((20, 20, 5), np.float32), np.eye(4), "CT")
    write_volume(vol, tmp_path / "a.nii.gz")
    mask = vol.with_array(np.ones(vol.shape, np.float32))
    write_volume(mask, tmp_path / "m.nii.gz")
    res = _run("--pred", tmp_path / "a.nii.gz", "--ref", tmp_path / "a.nii.gz", "--mask",
               tmp_path / "m.nii.gz")
    assert res.exit_code == 3 and "at least 7 voxels" in res.output
