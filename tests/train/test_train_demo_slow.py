"""The done-when check: a ddpm demo trained by `medxlate train` on phantoms beats the
identity baseline (MR mapped linearly to HU, fitted on the training split) in MAE on the
held-out subjects. About 10 minutes on 2 CPU cores, hence slow."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from medxlate.cli.main import app

pytestmark = pytest.mark.slow


def _ok(args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_demo_ddpm_beats_identity_on_phantoms(tmp_path):
    from medxlate.models.registry import get_spec
    from medxlate.preprocess.dataset import load_dataset
    from medxlate.train.data import SliceData, collate
    from medxlate.train.validate import ct_to_hu
    from medxlate.weights import load_checkpoint

    _ok(["phantom", "--out", tmp_path / "cohort", "--subjects", 12, "--region", "brain",
         "--size", 48, 56, 40, "--spacing", 4, 4, 4, "--seed", 1])
    _ok(["preprocess", "--cohort", tmp_path / "cohort", "--out", tmp_path / "ds",
         "--set", "steps.resample.spacing_mm=[6,6,6]", "--set", "steps.slices.size=[40,40]",
         "--set", "steps.register.grid_mm=4", "--set", "steps.crop.margin_mm=6"])
    _ok(["train", "--model", "ddpm", "--data", tmp_path / "ds", "--out", tmp_path / "run",
         "--config", "demo", "--device", "cpu", "--steps", 800, "--set", "slice_size=[40,40]",
         "--set", "attention_resolutions=[10]", "--set", "progress=false"])

    ds = load_dataset(tmp_path / "ds")
    ct_norm = ds.normalisation["ct"]
    mr, hu = [], []
    for s in ds.subjects("train"):
        shard = ds.shard(s["id"])
        m = np.asarray(shard["mask"]) > 0
        mr.append(np.asarray(shard["mr"], np.float32)[m])
        hu.append(ct_to_hu(torch.from_numpy(np.asarray(shard["ct"], np.float32)[m]),
                           ct_norm).numpy())
    a, b = np.polyfit(np.concatenate(mr), np.concatenate(hu), 1)

    tensors, meta = load_checkpoint(tmp_path / "run" / "model.safetensors")
    family = get_spec("ddpm").load_entry()
    nets = family.build(meta.config)
    nets["unet"].load_state_dict({k[5:]: v for k, v in tensors.items()})
    held_out = "test" if ds.subjects("test") else "val"
    data = SliceData(ds, held_out, {**meta.config, "pairing": "paired"}, augment=False)
    batch = collate([data[(i, i, 0)] for i in range(len(data))])
    mask = batch["mask"] > 0.5
    target = ct_to_hu(batch["ct"], ct_norm)
    pred = family.translate(nets, batch["mr"], config=meta.config, sampler="ddim", steps=20,
                            eta=0.0, generator=torch.Generator().manual_seed(0))
    model_mae = float((ct_to_hu(pred, ct_norm) - target)[mask].abs().mean())
    identity_mae = float((a * batch["mr"] + b - target)[mask].abs().mean())
    print(f"held-out MAE: ddpm {model_mae:.1f} HU, identity {identity_mae:.1f} HU")
    assert model_mae < 0.8 * identity_mae
