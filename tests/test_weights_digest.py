"""Tensor digests: written into every checkpoint at save time, checked at every load."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file as save_numpy
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.errors import WeightsError
from medxlate.weights import (
    DIGEST_KEY,
    CheckpointMeta,
    file_tensor_digest,
    load_checkpoint,
    save_checkpoint,
    tensor_digest,
    write_manifest_entry,
)

runner = CliRunner()
META = CheckpointMeta(model="demo-net", config={"channels": 2})


def _arrays() -> dict[str, np.ndarray]:
    return {"b.weight": np.array([[1.5, -2.0], [3.25, 4.0]], np.float32),
            "a.count": np.array([7], np.int64),
            "c.flags": np.array([True, False, True])}


def _hand_digest(arrays: dict[str, np.ndarray]) -> str:
    """The documented encoding, written out from the safetensors spec and numpy bytes."""
    codes = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64", np.dtype(bool): "BOOL"}
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        shape = ",".join(str(n) for n in a.shape)
        h.update(f"{name}\x00{codes[a.dtype]}\x00{shape}\x00".encode())
        h.update(a.astype(a.dtype.newbyteorder("<")).tobytes())
    return h.hexdigest()


def _flip_data_byte(path, offset: int = 5) -> None:
    """Flip one byte inside the tensor data (after the 8-byte length and the JSON header)."""
    raw = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", raw[:8])
    raw[8 + n + offset] ^= 0x40
    path.write_bytes(bytes(raw))


def _metadata(path) -> dict:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n])["__metadata__"]


def test_digest_follows_the_documented_encoding(tmp_path):
    arrays = _arrays()
    expected = _hand_digest(arrays)
    tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
    assert tensor_digest(tensors) == expected
    path = tmp_path / "w.safetensors"
    save_checkpoint(path, tensors, META)
    assert _metadata(path)[DIGEST_KEY] == expected
    assert file_tensor_digest(path) == (expected, expected)
    # bfloat16 (no numpy type) hashes its raw 2-byte words
    bf = torch.tensor([1.0, -0.5], dtype=torch.bfloat16)
    words = np.array([0x3F80, 0xBF00], "<u2").tobytes()
    h = hashlib.sha256(b"x\x00BF16\x002\x00" + words).hexdigest()
    assert tensor_digest({"x": bf}) == h


def test_flipped_tensor_bytes_are_refused_at_load(tmp_path):
    path = tmp_path / "w.safetensors"
    save_checkpoint(path, {k: torch.from_numpy(v) for k, v in _arrays().items()}, META)
    load_checkpoint(path)
    _flip_data_byte(path)
    with pytest.raises(WeightsError, match="do not match the digest stored at save time"):
        load_checkpoint(path)


def test_files_without_a_digest_load_with_one_warning(tmp_path, capsys):
    path = tmp_path / "old.safetensors"
    save_numpy(_arrays(), str(path), metadata=META.to_strings())
    tensors, _ = load_checkpoint(path)
    load_checkpoint(path)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("medxlate: warning: ")
    assert "no tensor digest" in err[0] and str(path) in err[0]
    assert torch.equal(tensors["a.count"], torch.tensor([7]))
    # a manifest sha256 vouches for the whole file: no warning
    write_manifest_entry(path, model="demo-net", config="demo")
    load_checkpoint(path, sha256=json.loads((tmp_path / "manifest.json").read_text())
                    ["files"][path.name]["sha256"])
    assert capsys.readouterr().err == ""


def test_weights_verify_any_file(tmp_path):
    good = tmp_path / "good.safetensors"
    save_checkpoint(good, {k: torch.from_numpy(v) for k, v in _arrays().items()}, META)
    res = runner.invoke(app, ["weights", "verify", "--weights", str(good), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["status"] == "ok"
    old = tmp_path / "old.safetensors"
    save_numpy(_arrays(), str(old), metadata=META.to_strings())
    res = runner.invoke(app, ["weights", "verify", "--weights", str(old)])
    assert res.exit_code == 0 and "no digest" in res.stdout
    assert "no tensor digest" in res.stderr
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(good.read_bytes())
    _flip_data_byte(bad, offset=9)
    res = runner.invoke(app, ["weights", "verify", "--weights", str(good), "--weights",
                              str(bad)])
    assert res.exit_code == 5, res.output
    assert "digest mismatch" in res.stdout and "bad.safetensors" in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medxlate: error: 1 of 2")


def test_synthesize_with_flipped_user_weights_exits_5(tmp_path):
    from tests.synth.conftest import make_checkpoint, phantom_mr, write_nifti

    weights = make_checkpoint(tmp_path / "p2p.safetensors")
    _flip_data_byte(weights, offset=1001)
    mr = write_nifti(tmp_path / "mr.nii.gz", phantom_mr((24, 24, 4)),
                     np.diag([1.5, 1.5, 2.0, 1.0]))
    res = runner.invoke(app, ["synthesize", "--quiet", "--model", "pix2pix", "--weights",
                              str(weights), "--in", str(mr), "--out",
                              str(tmp_path / "sct.nii.gz")])
    assert res.exit_code == 5, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "do not match the digest" in lines[0]
    assert not (tmp_path / "sct.nii.gz").exists()


def test_training_state_carries_and_checks_a_digest(tmp_path):
    from medxlate.train.checkpoint import load_state, save_state

    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    folder = tmp_path / "step-00000001"
    save_state(folder, {"G": net}, {"opt": opt}, None, {"step": 1}, ["G"], META)
    for name in ("state.safetensors", "model.safetensors"):
        stored = _metadata(folder / name)[DIGEST_KEY]
        assert file_tensor_digest(folder / name) == (stored, stored)
    assert load_state(folder, {"G": net}, {"opt": opt}, None, torch.device("cpu"))["step"] == 1
    _flip_data_byte(folder / "state.safetensors")
    with pytest.raises(WeightsError, match="do not match the digest"):
        load_state(folder, {"G": net}, {"opt": opt}, None, torch.device("cpu"))
