"""The safetensors checkpoint format: metadata round trip, sha256 checks, foreign files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file as save_numpy

from medxlate import __version__
from medxlate.errors import WeightsError
from medxlate.weights import (
    CheckpointMeta,
    load_checkpoint,
    manifest,
    read_meta,
    save_checkpoint,
    sha256_file,
    shipped_weights,
    write_manifest_entry,
)

META = CheckpointMeta(
    model="demo-net",
    config={"channels": 8, "levels": [1, 2]},
    normalisation={"ct": {"low": -1024.0, "high": 3071.0}, "mr": {"percentiles": [0.5, 99.5]}},
    data={"dataset": "phantom", "spacing_mm": [1.0, 1.0, 2.5]},
    extra={"steps": 12},
)


@pytest.fixture()
def checkpoint(tmp_path):
    tensors = {"G.conv.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4),
               "G.conv.bias": torch.tensor([0.5, -1.5, 2.0])}
    path = tmp_path / "w.safetensors"
    save_checkpoint(path, tensors, META)
    return path, tensors


def test_round_trip_with_metadata(checkpoint):
    path, tensors = checkpoint
    loaded, meta = load_checkpoint(path, sha256=sha256_file(path))
    assert set(loaded) == set(tensors)
    for name, tensor in tensors.items():
        assert torch.equal(loaded[name], tensor)
    assert meta == CheckpointMeta(**{**META.__dict__, "version": __version__})
    assert meta.normalisation["ct"]["low"] == -1024.0 and meta.config["levels"] == [1, 2]


def test_sha_mismatch_refused(checkpoint):
    path, _ = checkpoint
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        load_checkpoint(path, sha256="f" * 64)


def test_foreign_and_broken_files_refused(tmp_path):
    foreign = tmp_path / "foreign.safetensors"
    save_numpy({"w": np.zeros(2, np.float32)}, str(foreign), metadata={"format": "pt"})
    with pytest.raises(WeightsError, match="not a medxlate checkpoint"):
        read_meta(foreign)
    with pytest.raises(WeightsError, match="not a medxlate checkpoint"):
        load_checkpoint(foreign)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01 not safetensors at all")
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        read_meta(garbage)
    damaged = tmp_path / "damaged.safetensors"
    save_numpy({"w": np.zeros(2, np.float32)}, str(damaged),
               metadata={**META.to_strings(), "config": "{not json"})
    with pytest.raises(WeightsError, match="damaged checkpoint metadata"):
        read_meta(damaged)
    with pytest.raises(WeightsError, match="not found"):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_read_meta_loads_no_tensor_and_no_torch(tmp_path):
    path = tmp_path / "np.safetensors"
    save_numpy({"G.w": np.ones((4, 4), np.float32)}, str(path), metadata=META.to_strings())
    code = ("import sys; from medxlate.weights import read_meta; "
            f"m = read_meta({str(path)!r}); "
            "print(m.model, m.config['channels'], 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    assert out == ["demo-net", "8", "False"]


def test_manifest_entry_and_shipped_weights(checkpoint):
    path, tensors = checkpoint
    write_manifest_entry(path, model="demo-net", config="demo", card="cards/demo.md")
    data = manifest(path.parent)
    entry = data["files"][path.name]
    assert entry["sha256"] == sha256_file(path) and entry["bytes"] == path.stat().st_size
    assert entry["card"] == "cards/demo.md"
    assert json.loads((path.parent / "manifest.json").read_text()) == data
    found, sha = shipped_weights(path.name, path.parent)
    loaded, _ = load_checkpoint(found, sha256=sha)
    assert torch.equal(loaded["G.conv.bias"], tensors["G.conv.bias"])
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF  # flip bits in the last tensor byte
    path.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        load_checkpoint(found, sha256=sha)
    with pytest.raises(WeightsError, match="not listed"):
        shipped_weights("other.safetensors", path.parent)
