"""Issue 10: batch behaviour scripts rely on: exit codes, existing outputs, Ctrl-C, logs, seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.errors import MedxlateError, PartialFailure
from medxlate.io.readers import read_volume
from medxlate.synth.batch import raise_for_failures
from tests.synth.conftest import phantom_mr, write_nifti

runner = CliRunner()
AFF = np.diag([1.5, 1.5, 2.0, 1.0])


@pytest.fixture()
def cohort(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        write_nifti(folder / f"case{i}.nii.gz", phantom_mr((24, 24, 4), seed=i), AFF)
    return folder


def synth(weights, src, out, *extra):
    return runner.invoke(app, ["synthesize", "--model", "pix2pix", "--weights", str(weights),
                               "--in", str(src), "--out", str(out), *extra])


def test_all_cases_failing_exit_with_their_own_code(tmp_path, cohort, p2p_weights):
    for p in cohort.iterdir():
        p.write_bytes(b"\x1f\x8b not really gzip")
    res = synth(p2p_weights, cohort, tmp_path / "out", "--quiet")
    assert res.exit_code == 3, res.output  # input errors, not 8 (nothing succeeded)
    assert res.stderr.strip().splitlines()[-1].startswith("medxlate: error: all 3 case(s) failed")


@pytest.mark.parametrize(("statuses", "codes", "expected"), [
    (["failed", "failed"], [5, 5], 5),
    (["failed", "failed"], [4, 3], 4),       # they differ: the first failed case's code
    (["ok", "failed"], [None, 3], 8),
    (["skipped", "failed"], [None, 5], 8),   # a skipped case counts as done
])
def test_exit_code_policy(statuses, codes, expected):
    cases = [{"input": f"c{i}", "id": f"c{i}", "status": s, "error": "e", "exit_code": c}
             for i, (s, c) in enumerate(zip(statuses, codes, strict=True))]
    with pytest.raises(MedxlateError) as info:
        raise_for_failures(cases)
    assert info.value.exit_code == expected
    assert isinstance(info.value, PartialFailure) == (expected == 8)


def test_existing_outputs_stop_a_cohort_before_any_work(tmp_path, cohort, p2p_weights):
    out = tmp_path / "out"
    out.mkdir()
    (out / "case1_sct.nii.gz").write_bytes(b"someone's file")
    res = synth(p2p_weights, cohort, out, "--quiet")
    assert res.exit_code == 4
    assert "case1_sct.nii.gz exists" in res.stderr and "--skip-existing" in res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["case1_sct.nii.gz"]  # case0 not written
    assert (out / "case1_sct.nii.gz").read_bytes() == b"someone's file"


def test_partial_failure_still_lists_outputs_summary_and_report(tmp_path, cohort, p2p_weights):
    (cohort / "case1.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    out, report = tmp_path / "out", tmp_path / "run.json"
    res = synth(p2p_weights, cohort, out, "--quiet", "--report", str(report))
    assert res.exit_code == 8
    lines = res.stdout.strip().splitlines()
    assert lines == [f"{cohort / 'case0.nii.gz'} -> {out / 'case0_sct.nii.gz'}",
                     f"{cohort / 'case2.nii.gz'} -> {out / 'case2_sct.nii.gz'}",
                     lines[-1]]
    assert lines[-1].startswith("2 written, 0 skipped, 1 failed (")
    cases = json.loads(report.read_text())["cases"]
    assert [c["status"] for c in cases] == ["ok", "failed", "ok"]
    assert "InputError" in cases[1]["error"] and cases[1]["exit_code"] == 3


def test_ctrl_c_reports_done_failed_and_not_started(tmp_path, cohort, p2p_weights, monkeypatch):
    import medxlate.synth.run as run_module

    real = run_module._one_case
    calls = []

    def interrupt_second(case, *args, **kwargs):
        calls.append(case.stem)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(case, *args, **kwargs)

    monkeypatch.setattr(run_module, "_one_case", interrupt_second)
    out, report = tmp_path / "out", tmp_path / "run.json"
    res = synth(p2p_weights, cohort, out, "--quiet", "--report", str(report))
    assert res.exit_code == 130
    assert res.stdout.splitlines() == [
        f"{cohort / 'case0.nii.gz'} -> {out / 'case0_sct.nii.gz'}",
        res.stdout.splitlines()[-1]]
    assert res.stdout.splitlines()[-1].startswith("1 written, 0 skipped, 1 failed, "
                                                  "1 not started (")
    data = json.loads(report.read_text())
    assert [(c["id"], c["status"]) for c in data["cases"]] == [
        ("case0", "ok"), ("case1", "failed"), ("case2", "not started")]
    assert data["cases"][1]["error"] == "interrupted"
    assert data["counts"] == {"ok": 1, "skipped": 0, "failed": 1, "not_started": 1}
    assert sorted(p.name for p in out.iterdir()) == ["case0_sct.nii.gz"]


def test_plain_progress_lines_when_stderr_is_not_a_terminal(tmp_path, cohort, p2p_weights):
    res = synth(p2p_weights, cohort, tmp_path / "out")  # CliRunner's stderr is no terminal
    assert res.exit_code == 0, res.output
    assert "\r" not in res.stderr and "\x1b" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "[1/3] case0: ok", "[2/3] case1: ok", "[3/3] case2: ok"]
    quiet = synth(p2p_weights, cohort, tmp_path / "out2", "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_default_seed_makes_stochastic_runs_repeatable(tmp_path, cohort, p2p_weights):
    src = cohort / "case0.nii.gz"
    arrays, reports = [], []
    for name, extra in (("a", []), ("b", []), ("c", ["--seed", "random"]),
                        ("d", ["--seed", "random"])):
        report = tmp_path / f"{name}.json"
        res = synth(p2p_weights, src, tmp_path / f"{name}.nii.gz", "--quiet", "--samples", "2",
                    "--report", str(report), *extra)
        assert res.exit_code == 0, res.output
        arrays.append(read_volume(tmp_path / f"{name}.nii.gz").array)
        reports.append(json.loads(report.read_text()))
    np.testing.assert_array_equal(arrays[0], arrays[1])  # pix2pix test-time dropout, seeded
    assert [r["seed"] for r in reports[:2]] == [0, 0]
    assert [r["seed_source"] for r in reports] == ["default", "default", "random", "random"]
    assert reports[2]["seed"] != reports[3]["seed"]
    assert not np.array_equal(arrays[2], arrays[3])
    # The recorded random seed reproduces that run.
    res = synth(p2p_weights, src, tmp_path / "e.nii.gz", "--quiet", "--samples", "2",
                "--seed", str(reports[2]["seed"]))
    assert res.exit_code == 0
    np.testing.assert_array_equal(read_volume(tmp_path / "e.nii.gz").array, arrays[2])
    bad = synth(p2p_weights, src, tmp_path / "f.nii.gz", "--seed", "lucky")
    assert bad.exit_code == 2 and "'random'" in bad.stderr
