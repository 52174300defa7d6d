"""``--steps``: a count N or improved-diffusion section respacing "a,b,c"; "ddimN" refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.diffusion import GaussianDiffusion, make_betas
from medxlate.diffusion.samplers import parse_sampler_args, parse_steps, resolve_sampler
from medxlate.errors import UsageError
from tests.synth.conftest import make_checkpoint, phantom_mr, write_nifti

runner = CliRunner()


@pytest.mark.parametrize("text,value", [("50", 50), (" 100,50 ", "100,50"), ("10, 5,1", "10,5,1"),
                                        (7, 7), (None, None)])
def test_parse_steps_accepts_counts_and_sections(text, value):
    assert parse_steps(text) == value


@pytest.mark.parametrize("text", ["ddim1", "ddim50", "0", "-3", "1.5", "10,,5", "10,0", "abc",
                                  ""])
def test_parse_steps_refuses_the_rest(text):
    with pytest.raises(UsageError, match="positive integer N or section counts"):
        parse_steps(text)


def test_ddim_spacing_hint():
    with pytest.raises(UsageError, match="--sampler ddim --steps 50"):
        parse_steps("ddim50")


def test_sections_are_for_the_respaced_sampler_only():
    fn, kwargs = resolve_sampler("respaced", "100,50")
    assert fn.__name__ == "respaced_ddpm" and kwargs == {"steps": "100,50"}
    assert parse_sampler_args("--sampler respaced --steps 8,4")[1] == {"steps": "8,4"}
    with pytest.raises(UsageError, match="applies to --sampler respaced"):
        resolve_sampler("ddim", "100,50")
    with pytest.raises(UsageError, match="section counts"):
        parse_sampler_args("--sampler respaced --steps ddim1")


def test_respaced_sampler_visits_the_section_timesteps():
    # T = 20 cut in two sections of 10: 4 steps at stride 3 (0, 3, 6, 9), 2 at stride 9 (10, 19)
    diffusion = GaussianDiffusion(make_betas("cosine", 20), mean_type="eps",
                                  var_type="fixed_small")
    fn, kwargs = resolve_sampler("respaced", parse_steps("4,2"))
    seen = []

    def model(x, t, cond):
        seen.append(int(t[0]))
        return torch.zeros_like(x)

    fn(model, torch.zeros(1, 1, 4, 4), diffusion, generator=torch.Generator().manual_seed(0),
       **kwargs)
    assert seen == [19, 10, 9, 6, 3, 0]


def test_synthesize_cli_takes_sections_and_refuses_ddim_spacing(tmp_path):
    weights = make_checkpoint(tmp_path / "w.safetensors", "ddpm", slice_size=[16, 16],
                              model_channels=8, channel_mult=[1, 2], num_res_blocks=1,
                              attention_resolutions=[8], head_channels=8, diffusion_steps=20)
    src = write_nifti(tmp_path / "mr.nii.gz", phantom_mr((16, 16, 2)),
                      np.diag([1.5, 1.5, 2.0, 1.0]))
    base = ["synthesize", "--quiet", "--model", "ddpm", "--weights", str(weights), "--in",
            str(src), "--sampler", "respaced"]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "a.nii.gz"), "--steps", "ddim1"])
    assert res.exit_code == 2 and "section counts" in res.output
    assert not (tmp_path / "a.nii.gz").exists()
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "b.nii.gz"), "--steps", "4,2",
                              "--report", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["sampler"]["steps"] == "4,2"
