"""The bench's dose columns: spec checks, the plumbing (dose scorer patched: its maths is
tested in tests/evaluate/dose), caching, --no-dose, and one real plan through score_dose."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from tests.bench.test_bench_spec import GOOD

runner = CliRunner()
TINY = Path(__file__).with_name("tiny.yaml")
DOSE = "dose: {modality: photon, prescription: 60Gy/30fx, target: 'sphere:0,0,0,12'}\n"


@pytest.mark.parametrize(("dose", "expected"), [
    ("dose: {modality: electron, target: 'label:3'}", "dose: --dose must be photon or proton"),
    ("dose: {modality: photon}", "dose: missing: sphere:X,Y,Z,R"),
    ("dose: {target: 'label:3', beam: [0]}", "dose: unknown key 'beam'"),
    ("dose: {target: 'label:3', dose_grid: 50}", "dose: dose_grid must be between 1 and 10"),
    ("dose: {target: 'label:3', prescription: 60}", "dose: --prescription '60'"),
    ("dose: {target: 'label:3', beams: [0, 400]}", "dose: --beams '0,400'"),
    ("dose: {target: 'label:3', references: maybe}", "dose: references: expected true or"),
    ("dose: photon", "dose: expected a mapping"),
])
def test_bad_dose_key_is_one_line_and_exit_2(tmp_path, dose, expected):
    spec = tmp_path / "bench.yaml"
    spec.write_text(GOOD + dose + "\n")
    work = tmp_path / "W"
    result = runner.invoke(app, ["bench", "--spec", str(spec), "--workdir", str(work)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medxlate: error: bench.yaml: dose: ")
    assert expected in lines[0]
    assert not work.exists()


def test_relative_target_paths_follow_the_spec_file(tmp_path):
    from medxlate.bench import load_spec

    spec = tmp_path / "bench.yaml"
    spec.write_text(GOOD + "dose: {modality: proton, target: 'rs:PTV 1', ct_grid: 3}\n")
    dose = load_spec(spec).dose
    assert dose["target"] == str(tmp_path / "rs:PTV 1")       # rtstruct folder rs, ROI 'PTV 1'
    assert dose["beams"] == [90.0, 270.0] and dose["ct_grid_mm"] == 3.0


def test_without_the_extra_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyRadPlan", None)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY.read_text() + DOSE)
    work = tmp_path / "W"
    result = runner.invoke(app, ["bench", "--spec", str(spec), "--workdir", str(work)])
    assert result.exit_code == 2, result.output
    assert 'pip install "medxlate[dose]"' in result.stderr
    assert "or run with --no-dose" in result.stderr
    assert not work.exists()


def _fake_score(calls):
    """A stand-in for the dose scorer whose figures the test can recompute from the files:
    gamma_2_2 = mean of the prediction inside the mask / 10, dose_mae_body = its max / 1000."""
    def score(pred, subject, settings):
        calls.append((Path(pred).parent.name, subject.id, settings.mode))
        values = np.asarray(nib.load(str(pred)).dataobj, np.float64)
        mask = np.asarray(nib.load(str(subject.mask)).dataobj) > 0
        return {"gamma_2_2": float(values[mask].mean() / 10), "dose_mae_body":
                float(values.max() / 1000)}
    return score


def _expected(work: Path, folder: Path, subjects: list[str]) -> dict[str, float]:
    g, m = [], []
    for sid in subjects:
        values = np.asarray(nib.load(str(folder / f"{sid}.nii.gz")).dataobj, np.float64)
        mask = np.asarray(nib.load(str(work / "cohort" / "test" / sid / "mask.nii.gz"))
                          .dataobj) > 0
        g.append(values[mask].mean() / 10)
        m.append(values.max() / 1000)
    return {"gamma_2_2": float(np.mean(g)), "dose_mae_body": float(np.mean(m))}


def test_dose_columns_join_the_table_and_are_cached(tmp_path, monkeypatch):
    import medxlate.bench.dose as bench_dose

    calls: list = []
    monkeypatch.setattr(bench_dose, "score_dose", _fake_score(calls))
    monkeypatch.setattr("medxlate.evaluate.dose.require_engine", lambda: None)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY.read_text() + DOSE)
    work = tmp_path / "W"
    args = ["bench", "--spec", str(spec), "--workdir", str(work), "--steps", "1", "--models",
            "b", "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((work / "bench.json").read_text())
    subjects = report["test_subjects"]
    # every CT row but the constant guess, every held-out subject, once each
    assert sorted(calls) == sorted((folder, sid, "photon") for folder in
                                   ("out", "intensity-map", "floor-8mm") for sid in subjects)
    by = {r["label"]: r for r in [*report["rows"], *report["references"]]}
    folders = {"b": work / "models" / "b" / "out",
               "intensity-map": work / "references" / "mri2ct" / "intensity-map",
               "floor-8mm": work / "references" / "mri2ct" / "floor-8mm"}
    for label, folder in folders.items():
        expected = _expected(work, folder, subjects)
        got = by[label]["dose"]["metrics"]
        assert got["gamma_2_2"] == pytest.approx(expected["gamma_2_2"], rel=1e-9)
        assert got["dose_mae_body"] == pytest.approx(expected["dose_mae_body"], rel=1e-9)
    assert "dose" not in by["constant"]
    md = (work / "bench.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| row |"))
    assert header.endswith("| γ 2%/2mm (%) | γ 1%/1mm (%) | dose MAE body (% Rx) | "
                           "dose MAE >90% (% Rx) | ΔD98 (% Rx) | ΔDmean (% Rx) |")
    b_line = next(line for line in md.splitlines() if line.startswith("| b |"))
    cells = [c.strip() for c in b_line.strip("|").split("|")]
    assert cells[-6:] == [f"{by['b']['dose']['metrics']['gamma_2_2']:.2f}", "-",
                          f"{by['b']['dose']['metrics']['dose_mae_body']:.2f}", "-", "-", "-"]
    assert "Dose columns: `medxlate evaluate --dose photon`" in md
    rows = {r["label"]: r for r in csv.DictReader((work / "bench.csv").open())}
    assert float(rows["b"]["gamma_2_2"]) == pytest.approx(
        by["b"]["dose"]["metrics"]["gamma_2_2"], rel=1e-5)
    assert rows["constant"]["gamma_2_2"] == ""

    calls.clear()                                   # a rerun plans nothing again
    assert runner.invoke(app, args).exit_code == 0
    assert calls == []
    assert json.loads((work / "bench.json").read_text())["rows"][0]["dose"] == by["b"]["dose"]

    assert runner.invoke(app, [*args, "--no-dose"]).exit_code == 0   # skipped: no columns
    assert calls == []
    assert "γ 2%/2mm" not in (work / "bench.md").read_text()
    assert "gamma_2_2" not in (work / "bench.csv").read_text()


def test_a_failed_plan_is_reported_and_the_bench_goes_on(tmp_path, monkeypatch):
    import medxlate.bench.dose as bench_dose
    from medxlate.errors import InputError

    def refuse(pred, subject, settings):
        raise InputError(f"target of {subject.id} is empty on the reference grid")

    monkeypatch.setattr(bench_dose, "score_dose", refuse)
    monkeypatch.setattr("medxlate.evaluate.dose.require_engine", lambda: None)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY.read_text() + DOSE.replace("}", ", references: false}"))
    work = tmp_path / "W"
    result = runner.invoke(app, ["bench", "--spec", str(spec), "--workdir", str(work),
                                 "--steps", "1", "--models", "b", "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads((work / "bench.json").read_text())
    dose = report["rows"][0]["dose"]
    assert dose["metrics"] == {} and len(dose["failed"]) == 2
    assert "is empty on the reference grid" in dose["failed"][0]["error"]
    assert all("dose" not in r for r in report["references"])      # references: false


def test_score_dose_plans_for_real(tmp_path):
    """The real scorer on the dose tests' cylinder: the reference against itself scores
    gamma 100 % and no dose difference; the label map beside the CT gives label:K."""
    from medxlate.bench.cohort import TestSubject
    from medxlate.bench.dose import score_dose
    from medxlate.bench.dose_spec import to_settings
    from medxlate.evaluate.dose import engine_available
    from tests.evaluate.dose import phantoms

    if not engine_available():
        pytest.skip('the dose extra is not installed (pip install "medxlate[dose]")')
    ct, body, target = phantoms.cylinder()
    affine = phantoms.grid().affine
    for name, array in (("ct", ct), ("mask", body), ("labels", np.where(target, 10, 1))):
        nib.save(nib.Nifti1Image(np.asarray(array, np.float32), affine),
                 str(tmp_path / f"{name}.nii.gz"))
    subject = TestSubject("s", tmp_path / "ct.nii.gz", tmp_path / "ct.nii.gz",
                          tmp_path / "mask.nii.gz")
    settings = to_settings({"modality": "photon", "prescription_gy": 60.0, "fractions": 30,
                            "target": "label:10", "beams": [0.0, 120.0, 240.0],
                            "dose_grid_mm": 5.0, "ct_grid_mm": 3.0, "calibration": None})
    metrics = score_dose(tmp_path / "ct.nii.gz", subject, settings)
    assert metrics["gamma_2_2"] == 100.0 and metrics["gamma_1_1"] == 100.0
    assert metrics["dose_mae_body"] < 1e-9 and abs(metrics["target_mean_diff"]) < 1e-9
    assert "mae" not in metrics                      # HU figures stay the bench's own
