"""ALDM training through the engine's stages: all three in sequence, resume, a lone stage."""

from __future__ import annotations

import shutil

import pytest
import torch

from medxlate.errors import UsageError
from medxlate.train import train
from medxlate.train.checkpoint import step_folders
from medxlate.weights import load_checkpoint
from tests.models.aldm_helpers import TINY_ALDM, make_volume_dataset


@pytest.fixture(scope="module")
def volume_dataset(tmp_path_factory):
    return make_volume_dataset(tmp_path_factory.mktemp("aldm") / "DATASET")


def _config(**over):
    return {"base": "demo", **TINY_ALDM, **over}


def test_stages_run_in_order_and_resume_exactly(volume_dataset, tmp_path):
    straight = train("aldm", volume_dataset, tmp_path / "a", config=_config(keep_checkpoints=0),
                     device="cpu")
    # autoencoder 2 steps, spade 2, ldm the rest: each stage logs only its own losses.
    assert {"recon_l1", "codebook", "cycle", "d_loss"} <= set(straight.losses[0])
    assert set(straight.losses[2]) == {"loss", "grad_norm_spade"}
    assert set(straight.losses[5]) == {"loss", "grad_norm_unet"}
    tensors, meta = load_checkpoint(straight.model_path)
    assert {k.split(".")[0] for k in tensors} == {"vqvae", "spade", "unet"}
    assert meta.config["targets"] == ["t2", "ct"]

    # A run interrupted after the autoencoder stage (only its step-2 checkpoint left)
    # resumes through the spade and ldm stages to the same weights as the straight run.
    interrupted = tmp_path / "b"
    shutil.copytree(tmp_path / "a", interrupted)
    (interrupted / "model.safetensors").unlink()
    for step, folder in step_folders(interrupted):
        if step > 2:
            shutil.rmtree(folder)
    resumed = train("aldm", volume_dataset, interrupted, resume=True, device="cpu")
    assert [sorted(r) for r in resumed.losses] == [sorted(r) for r in straight.losses[2:]]
    again, _ = load_checkpoint(resumed.model_path)
    for key, value in tensors.items():
        torch.testing.assert_close(again[key], value, rtol=0, atol=1e-6, msg=key)


def test_a_lone_later_stage_needs_the_earlier_run(volume_dataset, tmp_path):
    with pytest.raises(UsageError, match="--stage spade trains on a frozen vqvae"):
        train("aldm", volume_dataset, tmp_path / "c", config=_config(steps=2),
              overrides={"stage": "spade"}, device="cpu")
