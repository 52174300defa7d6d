"""Issue 10: `train --set` keys and value types are checked (exit 2, nearest key named);
`train --quiet`; plain progress lines when stderr is not a terminal."""

from __future__ import annotations

import json

import pytest
from conftest import TINY_DDPM
from typer.testing import CliRunner

from medxlate.cli.main import app

runner = CliRunner()


@pytest.mark.parametrize(("setting", "expected"), [
    ("lr=abc", "--set lr=\"abc\": expected a number"),          # was an internal error (1)
    ("foo=1", "unknown config key 'foo'"),                      # was accepted silently
    ("lrr=1e-4", "unknown config key 'lrr' (did you mean 'lr'?)"),
    ("augment.flip_rl=0.5", "(did you mean 'augment.flip_lr'?)"),
    ("augment.flip_lr=yes", "augment.flip_lr=\"yes\": expected a number"),
    ("batch_size=2.5", "batch_size=2.5: expected an integer"),
    ("ema_warmup=1", "ema_warmup=1: expected true or false"),
])
def test_bad_set_is_a_usage_error(tiny_dataset, tmp_path, setting, expected):
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", "--model", "ddpm", "--data", str(tiny_dataset), "--out",
                            str(out), "--config", "demo", "--set", setting])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medxlate: error: ") and expected in lines[0]
    assert not out.exists()


def _tiny_args(tiny_dataset, tmp_path, name):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"base": "demo", **TINY_DDPM}))
    return ["train", "--model", "ddpm", "--data", str(tiny_dataset), "--out",
            str(tmp_path / name), "--config", str(config), "--device", "cpu", "--steps", "2",
            "--set", "val_slices=1", "--set", "progress=true"]


def test_progress_lines_and_quiet(tiny_dataset, tmp_path):
    r = runner.invoke(app, _tiny_args(tiny_dataset, tmp_path, "a"))
    assert r.exit_code == 0, r.output
    assert "\r" not in r.stderr and "\x1b" not in r.stderr
    steps = [line.split(":")[1].strip() for line in r.stderr.splitlines()
             if line.startswith("train: step")]
    assert steps == ["step 1/2", "step 2/2"]
    q = runner.invoke(app, [*_tiny_args(tiny_dataset, tmp_path, "b"), "--quiet"])
    assert q.exit_code == 0, q.output
    assert "train: step" not in q.stderr and "trained ddpm for 2 steps" in q.stdout
