"""`medxlate bench` end to end through the CLI on the tiny spec."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app

TINY = Path(__file__).with_name("tiny.yaml")


def test_bench_command_writes_the_table_csv_json_and_plot(tmp_path):
    work = tmp_path / "W"
    result = CliRunner().invoke(app, ["bench", "--spec", str(TINY), "--workdir", str(work),
                                      "--steps", "1", "--models", "b", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "| b | 8 mm | 1 steps," in result.stdout
    rows = list(csv.DictReader((work / "bench.csv").open()))
    assert [(r["kind"], r["label"]) for r in rows] == [
        ("model", "b"), ("reference", "constant"), ("reference", "intensity-map"),
        ("reference", "floor-8mm")]
    assert rows[0]["steps"] == "1" and rows[0]["subjects"] == "2"
    # the row's distances are its MAE minus the reference rows' MAE
    mae = {r["label"]: float(r["mae"]) for r in rows}
    assert float(rows[0]["above_floor"]) == pytest.approx(
        mae["b"] - mae["floor-8mm"], abs=1e-3)
    assert float(rows[0]["vs_intensity_map"]) == pytest.approx(
        mae["b"] - mae["intensity-map"], abs=1e-3)
    assert (work / "bench-mri2ct.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
