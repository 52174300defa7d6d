"""`medxlate train` through typer's CliRunner: exit codes and a real tiny run."""

from __future__ import annotations

import importlib.util
import json

from conftest import TINY_DDPM
from typer.testing import CliRunner

from medxlate.cli.main import app

runner = CliRunner()


def _train(*args):
    return runner.invoke(app, ["train", *map(str, args)])


def test_exit_codes(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    r = _train("--model", "nope", "--data", tiny_dataset, "--out", out)
    assert r.exit_code == 2 and "unknown model 'nope'" in r.output
    r = _train("--model", "ddpm", "--data", tmp_path / "missing", "--out", out)
    assert r.exit_code == 3 and "dataset not found" in r.output
    # an absent device is a usage error (2), never a silent CPU fallback
    r = _train("--model", "ddpm", "--data", tiny_dataset, "--out", out, "--device", "cuda:99")
    assert r.exit_code == 2 and "cuda:99" in r.output
    r = _train("--model", "ddpm", "--data", tiny_dataset, "--out", out, "--config", "huge")
    assert r.exit_code == 2 and "neither a config" in r.output
    r = _train("--model", "ddpm", "--data", tiny_dataset, "--out", out, "--steps", "2",
               "--epochs", "1")
    assert r.exit_code == 2
    r = _train("--model", "ddpm", "--data", tiny_dataset, "--out", out, "--resume")
    assert r.exit_code == 3 and "config.json" in r.output
    assert not out.exists()                          # nothing half-written by failures


def test_cli_trains_and_refuses_to_overwrite(tiny_dataset, tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"base": "demo", **TINY_DDPM}))
    out = tmp_path / "run"
    args = ["--model", "ddpm", "--data", tiny_dataset, "--out", out, "--config", config,
            "--device", "cpu"]
    r = _train(*args, "--steps", "2", "--set", "val_slices=1", "--set", "lr=0.001")
    assert r.exit_code == 0, r.output
    assert "trained ddpm for 2 steps" in r.output and "val_mae_hu" in r.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["steps"] == 2 and cfg["val_slices"] == 1 and cfg["lr"] == 0.001
    r = _train(*args)
    assert r.exit_code == 4 and "--resume" in r.output
    r = _train("--model", "ddpm", "--data", tiny_dataset, "--out", out, "--resume",
               "--steps", "3", "--device", "cpu")
    assert r.exit_code == 0 and "for 3 steps" in r.output
    r = _train("--model", "ddpm", "--data", tiny_dataset, "--out", out, "--resume",
               "--batch-size", "3")
    assert r.exit_code == 2 and "--resume uses the run's config.json" in r.output


def test_tensorboard_option(tiny_dataset, tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"base": "demo", **TINY_DDPM}))
    out = tmp_path / "tb"
    r = _train("--model", "ddpm", "--data", tiny_dataset, "--out", out, "--config", config,
               "--steps", "1", "--device", "cpu", "--set", "tensorboard=true")
    if importlib.util.find_spec("tensorboard") is None:
        assert r.exit_code == 2 and "pip install tensorboard" in r.output
        assert not out.exists()
    else:
        assert r.exit_code == 0 and any((out / "tensorboard").iterdir())
