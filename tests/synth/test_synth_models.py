"""synthesize runs every 2D/2.5D family of the registry (random weights: plumbing only)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.io.readers import read_volume
from tests.synth.conftest import make_checkpoint, phantom_mr, write_nifti

runner = CliRunner()

TINY = {
    "ddpm": {"slice_size": [16, 16], "model_channels": 8, "channel_mult": [1, 2],
             "num_res_blocks": 1, "attention_resolutions": [8], "head_channels": 8,
             "diffusion_steps": 50},
    "syndiff": {"slice_size": [16, 16], "nf": 8, "ch_mult": [1, 2], "attn_resolutions": [8],
                "z_emb_dim": 16, "n_mlp": 2, "ngf_d": 8, "t_emb_dim": 16, "ngf_f": 8,
                "ndf_c": 8},
}
SAMPLING = {"ddpm": ["--sampler", "ddim", "--steps", "3"], "syndiff": []}


@pytest.mark.parametrize("name", ["ddpm", "syndiff"])
def test_stochastic_models_give_mean_and_std_on_the_input_grid(tmp_path, name):
    weights = make_checkpoint(tmp_path / "w.safetensors", name, **TINY[name])
    aff = np.diag([1.5, 1.5, 2.0, 1.0])
    src = write_nifti(tmp_path / "mr.nii.gz", phantom_mr((20, 20, 3)), aff)
    res = runner.invoke(app, [
        "synthesize", "--quiet", "--model", name, "--weights", str(weights), "--in", str(src),
        "--out", str(tmp_path / "sct.nii.gz"), "--samples", "2", "--uncertainty",
        str(tmp_path / "std.nii.gz"), "--seed", "3", *SAMPLING[name]])
    assert res.exit_code == 0, res.output
    mean = read_volume(tmp_path / "sct.nii.gz")
    std = read_volume(tmp_path / "std.nii.gz")
    assert mean.same_grid(read_volume(src)) and std.same_grid(mean)
    body = mean.array > -1024.0
    assert body.any() and (std.array >= 0).all() and std.array[body].max() > 0
    assert (std.array[~body] == 0).all()
