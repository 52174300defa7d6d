"""Every documented exit code through the CLI, one stderr line, tracebacks only with --debug."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

import medxlate.io
from medxlate.cli.main import app
from medxlate.errors import EXIT_CODES

runner = CliRunner()


@pytest.fixture()
def image(tmp_path):
    path = tmp_path / "a.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((2, 3, 4), np.float32), np.eye(4)), str(path))
    return path


def _single_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_documented_codes():
    assert sorted(EXIT_CODES) == [0, 1, 2, 3, 4, 5, 6, 7, 8]


def test_code_0(image):
    result = runner.invoke(app, ["info", str(image), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["shape"] == [2, 3, 4]
    assert result.stderr == ""


def test_code_1_internal_error_and_debug(image, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(medxlate.io, "read_volume", broken)
    result = runner.invoke(app, ["info", str(image)])
    assert result.exit_code == 1
    line = _single_line(result)
    assert "internal error: RuntimeError: simulated bug" in line and "--debug" in line
    debug = runner.invoke(app, ["--debug", "info", str(image)])
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr and "simulated bug" in debug.stderr
    again = runner.invoke(app, ["info", str(image)])  # --debug does not stick
    assert "Traceback" not in again.stderr


def test_code_2_usage(image, tmp_path):
    assert runner.invoke(app, ["info", str(image), "--no-such-option"]).exit_code == 2
    assert runner.invoke(app, ["convert", str(image)]).exit_code == 2  # missing argument
    result = runner.invoke(app, ["convert", str(image), str(tmp_path / "x.nii"),
                                 "--modality", "XR"])
    assert result.exit_code == 2 and "--modality XR" in _single_line(result)


def test_code_3_input(tmp_path):
    result = runner.invoke(app, ["info", str(tmp_path / "absent.nii")])
    assert result.exit_code == 3 and "no such file or folder" in _single_line(result)
    debug = runner.invoke(app, ["--debug", "info", str(tmp_path / "absent.nii")])
    assert debug.exit_code == 3 and "Traceback" in debug.stderr


def test_code_4_output(image, tmp_path):
    target = tmp_path / "exists.mha"
    target.write_bytes(b"old")
    result = runner.invoke(app, ["convert", str(image), str(target)])
    assert result.exit_code == 4 and "--overwrite" in _single_line(result)
    assert target.read_bytes() == b"old"


def _weights_folder(tmp_path, metadata, sha=None):
    from safetensors.numpy import save_file

    from medxlate.weights import sha256_file

    folder = tmp_path / "weights"
    folder.mkdir()
    save_file({"net.w": np.zeros(3, np.float32)}, str(folder / "m.safetensors"),
              metadata=metadata)
    entry = {"sha256": sha or sha256_file(folder / "m.safetensors"), "model": "demo"}
    (folder / "manifest.json").write_text(json.dumps({"files": {"m.safetensors": entry}}))
    return folder


def test_code_5_weights_sha_mismatch(tmp_path):
    from medxlate.weights import CheckpointMeta

    folder = _weights_folder(tmp_path, CheckpointMeta("demo", {}).to_strings(), sha="0" * 64)
    result = runner.invoke(app, ["weights", "verify", str(folder)])
    assert result.exit_code == 5 and "1 of 1 weights files failed" in _single_line(result)
    assert "sha256 mismatch" in result.stdout


def test_code_5_foreign_safetensors(tmp_path):
    folder = _weights_folder(tmp_path, {"format": "pt"})
    result = runner.invoke(app, ["weights", "verify", str(folder), "--json"])
    assert result.exit_code == 5
    rows = json.loads(result.stdout)
    assert "not a medxlate checkpoint" in rows[0]["status"]
