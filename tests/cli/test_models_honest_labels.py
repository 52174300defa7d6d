"""Honest labels: the shipped `syndiff` weights are the paired variant, and the published
unpaired SynDiff has its own registry entry, weights and model card."""

import json
from pathlib import Path

from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.models.registry import get_spec

runner = CliRunner()
WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


def _row(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if f" {name} " in line)


def test_models_table_says_which_syndiff_is_which():
    res = runner.invoke(app, ["models"], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert "paired variant, not the published unpaired SynDiff" in _row(res.output, "syndiff")
    assert "unpaired, cycle-consistent, as published" in _row(res.output, "syndiff-unpaired")
    specs = {s["name"]: s for s in json.loads(runner.invoke(app, ["models", "--json"]).output)}
    assert "paired variant" in specs["syndiff"]["description"]
    assert "not the published" in specs["syndiff"]["description"]
    assert specs["syndiff-unpaired"]["weights"] == "syndiff-unpaired-demo.safetensors"


def test_unpaired_spec_trains_the_papers_way():
    for config in ("demo", "paper"):
        assert get_spec("syndiff-unpaired").config(config)["pairing"] == "unpaired"
        assert get_spec("syndiff").config(config)["pairing"] == "paired"
    # the same networks otherwise
    paired, unpaired = get_spec("syndiff").config("demo"), get_spec("syndiff-unpaired").config()
    assert {k: v for k, v in unpaired.items() if k != "pairing"} == \
        {k: v for k, v in paired.items() if k != "pairing"}


def test_model_cards_name_the_variant():
    paired = (WEIGHTS / "syndiff-demo.md").read_text()
    assert "paired variant" in paired.lower() and "not the published" in paired
    unpaired = (WEIGHTS / "syndiff-unpaired-demo.md").read_text()
    assert "unpaired" in unpaired and "syndiff-unpaired" in unpaired
