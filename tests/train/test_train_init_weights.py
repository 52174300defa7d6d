"""Fine-tuning with init_weights: a run starts from another checkpoint's inference nets."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_DDPM

from medxlate.errors import UsageError
from medxlate.train import train
from medxlate.weights import load_checkpoint


def _cfg(**kw):
    return {"base": "demo", **TINY_DDPM, **kw}


@pytest.fixture(scope="module")
def base_run(tiny_dataset, tmp_path_factory):
    return train("ddpm", tiny_dataset, tmp_path_factory.mktemp("runs") / "base",
                 config=_cfg(), device="cpu")


def test_zero_lr_fine_tune_keeps_the_initial_weights(base_run, tiny_dataset, tmp_path):
    src = base_run.run_dir / "model.safetensors"
    # lr 0: the optimiser cannot move the weights, so the result is the file it started from
    # (an independent oracle: the tensors read straight from that file).
    out = train("ddpm", tiny_dataset, tmp_path / "ft", device="cpu",
                config=_cfg(init_weights=str(src), lr=0.0, steps=2))
    before, _ = load_checkpoint(src)
    after, meta = load_checkpoint(out.run_dir / "model.safetensors")
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert meta.config["init_weights"] == str(src)
    fresh, _ = load_checkpoint(train("ddpm", tiny_dataset, tmp_path / "fresh", device="cpu",
                                     config=_cfg(lr=0.0, steps=2)).run_dir / "model.safetensors")
    assert not all(torch.equal(before[k], fresh[k]) for k in before)


def test_init_weights_of_another_model_refused(base_run, tiny_dataset, tmp_path):
    src = base_run.run_dir / "model.safetensors"
    with pytest.raises(UsageError, match="a ddpm checkpoint, not"):
        train("pix2pix", tiny_dataset, tmp_path / "x", device="cpu",
              config={"base": "demo", "slice_size": [16, 16], "steps": 1, "batch_size": 2,
                      "val_every": 0, "progress": False, "init_weights": str(src)})


def test_fine_tune_records_the_budget_behind_it(base_run, tiny_dataset, tmp_path):
    """A run started from init_weights records the phases behind it and the total budget:
    the oracle is the starting file's own metadata and sha256 read here."""
    import hashlib

    from medxlate.weights import read_meta

    src = base_run.run_dir / "model.safetensors"
    first = read_meta(src).extra
    out = train("ddpm", tiny_dataset, tmp_path / "ft", device="cpu",
                config=_cfg(init_weights=str(src), steps=2))
    extra = read_meta(out.run_dir / "model.safetensors").extra
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    assert extra["lineage"] == [{"weights": "model.safetensors", "sha256": sha, "model": "ddpm",
                                 "steps": first["steps"],
                                 "seconds": round(first["seconds"], 3)}]
    assert extra["total_steps"] == first["steps"] + 2
    assert extra["total_seconds"] == pytest.approx(first["seconds"] + extra["seconds"],
                                                   abs=2e-3)
    # a second phase on top carries the first phase along
    out2 = train("ddpm", tiny_dataset, tmp_path / "ft2", device="cpu",
                 config=_cfg(init_weights=str(out.run_dir / "model.safetensors"), steps=1))
    extra2 = read_meta(out2.run_dir / "model.safetensors").extra
    assert [p["steps"] for p in extra2["lineage"]] == [first["steps"], 2]
    assert extra2["total_steps"] == first["steps"] + 3
    # medxlate info shows the phases
    import json

    from typer.testing import CliRunner

    from medxlate.cli.main import app

    shown = CliRunner().invoke(app, ["info", str(out2.run_dir / "model.safetensors"), "--json"])
    assert shown.exit_code == 0, shown.output
    summary = json.loads(shown.output)
    assert summary["phases"] == 3 and summary["total_steps"] == first["steps"] + 3
