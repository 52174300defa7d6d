"""Training stages (medxlate/train/stages.py) and the latent models through the engine."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import make_dataset
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.errors import UsageError
from medxlate.train import train
from medxlate.train.stages import stage_at, stage_plan
from medxlate.weights import load_checkpoint, read_meta

runner = CliRunner()


def test_stage_plan_sequence_and_single():
    plan = stage_plan([("a", 3), ("b", 2), ("c", None)], None, 10)
    assert [(s.name, s.start, s.end) for s in plan] == [("a", 0, 3), ("b", 3, 5), ("c", 5, 10)]
    assert [stage_at(plan, i).name for i in (0, 2, 3, 4, 5, 9)] == ["a", "a", "b", "b", "c", "c"]
    assert [(s.name, s.start, s.end) for s in stage_plan([("a", 3), ("b", None)], "b", 7)] == \
        [("b", 0, 7)]
    assert stage_plan(None, None, 5) == [] and stage_at([], 0) is None


def test_stage_plan_errors():
    with pytest.raises(UsageError, match="has no training stages"):
        stage_plan(None, "dit", 5, "ddpm")
    with pytest.raises(UsageError, match="no stage 'x'.*a, b"):
        stage_plan([("a", 3), ("b", None)], "x", 5)
    with pytest.raises(UsageError, match="do not add up"):
        stage_plan([("a", 3), ("b", None)], None, 3)


TINY_VAE = {"block_out_channels": [8, 8, 16, 16], "norm_num_groups": 4, "slice_size": [32, 32],
            "batch_size": 4, "steps": 2, "log_every": 1, "progress": False,
            "checkpoint_every": 2}
TINY_LATENT = {"slice_size": [32, 32], "depth": 1, "hidden": 16, "heads": 2, "batch_size": 4,
               "steps": 3, "diffusion_steps": 100, "val_every": 0, "val_slices": 2,
               "val_steps": 2, "log_every": 1, "progress": False, "checkpoint_every": 3,
               "embedder_patch": 2, "embedder_steps": 1}


@pytest.fixture(scope="module")
def latent_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("latent")
    data = make_dataset(root / "DATASET", size=32)
    train("vae", data, root / "vae", config="demo", overrides=TINY_VAE, device="cpu")
    return data, root / "vae" / "model.safetensors"


def test_med_dit_stages_in_sequence_record_clip_none(latent_setup, tmp_path):
    data, vae = latent_setup
    result = train("med-dit", data, tmp_path / "run", config="demo",
                   overrides={**TINY_LATENT, "vae": str(vae)}, device="cpu")
    # stage 1 (1 step) logs InfoNCE only, stage 2 the diffusion terms
    assert "info_nce" in result.losses[0] and "mse" not in result.losses[0]
    assert all("mse" in row and "vb" in row for row in result.losses[1:])
    header = (tmp_path / "run/train.csv").read_text().splitlines()[0].split(",")
    assert {"info_nce", "mse", "vb"} <= set(header)      # widened when the stage changed
    rows = [json.loads(x) for x in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    assert rows[0]["kind"] == "pretrained" and rows[0]["clip"] == "none"
    meta = read_meta(result.model_path)
    assert meta.config["clip"] == "none" and meta.config["vae_arch"]["latent_channels"] == 4
    tensors, _ = load_checkpoint(result.model_path)
    assert {k.split(".")[0] for k in tensors} == {"embedder", "dit", "vae"}
    # The frozen embedder shipped is the one the DiT stage was trained with (EMA copied in
    # at the stage change, unchanged afterwards).
    from safetensors.torch import load_file

    live = load_file(str(max((tmp_path / "run/checkpoints").iterdir()) / "state.safetensors"))
    emb = [k for k in tensors if k.startswith("embedder.")]
    assert emb and all(torch.allclose(tensors[k], live[f"net.{k}"], rtol=1e-6, atol=1e-7)
                       for k in emb)


def test_stage_dit_alone_needs_an_embedder(latent_setup, tmp_path):
    data, vae = latent_setup
    with pytest.raises(UsageError, match="--stage dit .* --set embedder="):
        train("med-dit", data, tmp_path / "a", config="demo",
              overrides={**TINY_LATENT, "vae": str(vae), "stage": "dit"}, device="cpu")
    first = train("med-dit", data, tmp_path / "emb", config="demo",
                  overrides={**TINY_LATENT, "vae": str(vae), "stage": "embedder", "steps": 2},
                  device="cpu")
    assert all(set(r) >= {"info_nce"} for r in first.losses)
    second = train("med-dit", data, tmp_path / "dit", config="demo",
                   overrides={**TINY_LATENT, "vae": str(vae), "stage": "dit",
                              "embedder": str(first.model_path)}, device="cpu")
    a, _ = load_checkpoint(first.model_path)
    b, _ = load_checkpoint(second.model_path)
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("embedder."))


def test_cli_stage_option_and_vae_errors(latent_setup, tmp_path):
    data, vae = latent_setup
    args = ["train", "--model", "dit", "--data", str(data), "--config", "demo", "--set",
            "slice_size=[32,32]"]
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--set",
                            f"vae={tmp_path / 'missing'}"])
    assert r.exit_code == 5 and "not found" in r.output and len(r.output.splitlines()) == 1
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert r.exit_code == 2 and "--set vae=PATH" in r.output
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "c"), "--stage", "dit",
                            "--set", f"vae={vae}"])
    assert r.exit_code == 2 and "has no training stages" in r.output
    r = runner.invoke(app, ["train", "--model", "med-dit", "--data", str(data), "--out",
                            str(tmp_path / "d"), "--stage", "bogus", "--set", f"vae={vae}",
                            "--set", "slice_size=[32,32]"])
    assert r.exit_code == 2 and "no stage 'bogus'" in r.output
