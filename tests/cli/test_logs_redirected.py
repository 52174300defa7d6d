"""Issue 10: logs when stderr/stdout are files: plain progress lines, --quiet, whole tables."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from typer.testing import CliRunner

from medxlate.cli.main import app

runner = CliRunner()  # its stdout and stderr are not terminals, like a log file


def _clean(text: str) -> None:
    assert "\r" not in text and "\x1b" not in text


def test_info_table_is_not_cut_at_80_columns(tmp_path):
    folder = tmp_path / ("a-long-study-folder-name-" * 5)
    folder.mkdir()
    path = folder / "scan.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((2, 3, 4), np.float32), np.eye(4)), str(path))
    res = runner.invoke(app, ["info", str(path)])
    assert res.exit_code == 0, res.output
    assert len(str(path)) > 120
    assert any(str(path) in line for line in res.stdout.splitlines())  # on one line, whole


def test_phantom_plain_lines_and_quiet(tmp_path):
    res = runner.invoke(app, ["phantom", "--out", str(tmp_path / "c"), "--subjects", "2",
                              "--size", "16", "16", "12"])
    assert res.exit_code == 0, res.output
    _clean(res.stderr)
    assert res.stderr.splitlines() == ["[1/2] brain-000: written", "[2/2] brain-001: written"]
    quiet = runner.invoke(app, ["phantom", "--out", str(tmp_path / "q"), "--size", "16", "16",
                                "12", "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == ""


def _pair(path, value):
    aff = np.diag([4.0, 4.0, 4.0, 1.0])
    arr = np.full((12, 12, 8), -1000.0, np.float32)
    arr[3:9, 3:9, 2:6] = value
    nib.save(nib.Nifti1Image(arr, aff), str(path))
    return path


def test_evaluate_plain_lines_and_quiet(tmp_path):
    for d in ("pred", "ref"):
        for sid in ("s1", "s2"):
            (tmp_path / d / sid).mkdir(parents=True)
    for sid in ("s1", "s2"):
        _pair(tmp_path / "pred" / sid / "sct.nii.gz", 40.0)
        _pair(tmp_path / "ref" / sid / "ct.nii.gz", 0.0)
    args = ["evaluate", "--pred", str(tmp_path / "pred"), "--ref", str(tmp_path / "ref")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    _clean(res.stderr)
    assert res.stderr.splitlines() == ["[1/2] s1: evaluated", "[2/2] s2: evaluated"]
    quiet = runner.invoke(app, [*args, "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_preprocess_plain_progress(capsys):
    from medxlate.cli.preprocess import _PlainProgress

    with _PlainProgress(quiet=False) as p:
        p.start(["a", "b"], 1)
        p.step("a", "register")
        p.done("a", True)
        p.done("b", False)
    assert capsys.readouterr().err.splitlines() == [
        "1 subject(s) already done with this configuration: skipped", "[1/2] a: done",
        "[2/2] b: failed"]
    with _PlainProgress(quiet=True) as p:
        p.start(["a"], 1)
        p.done("a", True)
    assert capsys.readouterr().err == ""
