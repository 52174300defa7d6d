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
