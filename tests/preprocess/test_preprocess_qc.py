"""Issue 10: preprocess flags a doubtful registration (TRE above the threshold when the truth is
known, or a final MI that is not better than the initial) instead of reporting it as done."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from medxlate.preprocess.qc import registration_warnings


def test_warnings_from_hand_made_reports():
    good = {"mi_identity": 0.47, "mi_final": 0.59, "tre_mm": {"median": 0.52, "max": 0.96}}
    assert registration_warnings(good, 5.0) == []
    far = {"mi_identity": 0.47, "mi_final": 0.59, "tre_mm": {"median": 56.0, "max": 97.0}}
    assert registration_warnings(far, 5.0) == ["TRE median 56 mm (max 97 mm) exceeds 5 mm"]
    assert registration_warnings(far, 60.0) == []
    flat = {"mi_identity": 0.5, "mi_final": 0.5}  # no truth: only the MI check
    assert registration_warnings(flat, 5.0) == ["final MI 0.5 is not better than the initial 0.5"]


def test_summary_marks_flagged_subjects_and_warns(capsys):
    from rich.console import Console

    from medxlate.cli.preprocess import _summary_table
    from medxlate.preprocess.run import RunResult

    reg = {"mi_identity": 0.4, "mi_final": 0.3, "tre_mm": {"median": 56.0, "max": 97.0},
           "warnings": registration_warnings({"mi_identity": 0.4, "mi_final": 0.3,
                                              "tre_mm": {"median": 56.0, "max": 97.0}}, 5.0)}
    result = RunResult("D", records=[{"id": "brain-000", "registration": reg},
                                     {"id": "brain-001", "registration": {
                                         "mi_identity": 0.4, "mi_final": 0.6, "warnings": []}}])
    _summary_table(result, Console(width=300, force_terminal=False))
    out, err = capsys.readouterr()
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if "brain-00" in line}
    assert "done, flagged" in rows["brain-000"] and "flagged" not in rows["brain-001"]
    prefix = "medxlate: warning: brain-000: registration check: "
    assert err.splitlines() == [prefix + "TRE median 56 mm (max 97 mm) exceeds 5 mm",
                                prefix + "final MI 0.3 is not better than the initial 0.4"]


@pytest.mark.slow
def test_wrong_truth_is_flagged_end_to_end(tmp_path):
    """A truth.json shifted by 30 mm: the registration is fine, the TRE check catches it."""
    import numpy as np

    from medxlate.cli.main import app

    runner = CliRunner()
    res = runner.invoke(app, ["phantom", "--out", str(tmp_path / "c"), "--size", "32", "32",
                              "16", "--quiet"])
    assert res.exit_code == 0, res.output
    truth_path = tmp_path / "c" / "brain-000" / "truth.json"
    truth = json.loads(truth_path.read_text())
    m = np.asarray(truth["transform"]["mr_to_ct"])
    m[0, 3] += 30.0
    truth["transform"]["mr_to_ct"] = m.tolist()
    truth_path.write_text(json.dumps(truth))
    res = runner.invoke(app, ["preprocess", "--cohort", str(tmp_path / "c"), "--out",
                              str(tmp_path / "d"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "done, flagged" in res.stdout
    assert "brain-000: registration check: TRE median" in res.stderr
    record = json.loads((tmp_path / "d" / "dataset.json").read_text())["subjects"][0]
    assert record["registration"]["tre_mm"]["median"] == pytest.approx(30.0, abs=2.0)
