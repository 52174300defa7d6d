"""Issue 10: every usage error is one line `medxlate: error: ...` and exit 2 (no rich panel)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app

runner = CliRunner()


@pytest.mark.parametrize(("argv", "expected"), [
    (["info", "x.nii.gz", "--no-such-option"], "No such option: --no-such-option"),
    (["convert", "a.nii.gz"], "Missing argument 'dst'"),
    (["synthesize", "--model", "syndiff"], "Missing option '--in'"),
    (["phantom", "--out", "c", "--subjects", "abc"], "Invalid value for '--subjects'"),
    (["phantom", "--out", "c", "--size", "64", "64"], "'--size' requires 3 arguments"),
    (["evaluate", "--hu-range", "low", "3000"], "Invalid value for '--hu-range'"),
    (["train", "--model", "ddpm"], "Missing option '--data'"),
    (["preprocess", "--out", "d", "--workers", "0"], "'--workers'"),
    (["no-such-command"], "No such command 'no-such-command'"),
    (["--bogus", "info"], "No such option: --bogus"),
    (["weights", "verify", "--nope"], "No such option: --nope"),
])
def test_usage_errors_are_one_line(argv, expected):
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("medxlate: error: ") and expected in lines[0]
    assert "--help" in lines[0]
    assert not any(ch in result.stderr for ch in "╭│╰")


def test_help_still_shows():
    result = runner.invoke(app, ["synthesize", "--help"])
    assert result.exit_code == 0 and "--model" in result.stdout
    bare = runner.invoke(app, [])
    assert "Usage" in bare.output and "medxlate: error" not in bare.output
