"""Sampler registry, the --sampler/--steps/--eta grammar, and sampler argument errors."""

import numpy as np
import pytest
import torch

from medxlate.diffusion import (
    SAMPLERS,
    GaussianDiffusion,
    adversarial,
    ddim,
    ddpm,
    dpmpp_2m,
    get_sampler,
    make_betas,
    one_shot,
    parse_sampler_args,
    resolve_sampler,
    respaced_ddpm,
    solver_timesteps,
    syndiff_vp,
)
from medxlate.errors import UsageError


def test_registry_names():
    assert set(SAMPLERS) == {"ddpm", "respaced", "ddim", "dpmpp-2m", "dpmpp-2m-karras",
                             "adversarial", "one-shot"}
    assert get_sampler("respaced") is respaced_ddpm
    with pytest.raises(UsageError, match="unknown sampler 'euler'; known: ddpm, respaced, ddim"):
        get_sampler("euler")


@pytest.mark.parametrize(("args", "fn", "kwargs"), [
    ("--sampler ddim --steps 50 --eta 0", ddim, {"steps": 50, "eta": 0.0}),
    ("--sampler ddim --steps=50 --eta=0.5", ddim, {"steps": 50, "eta": 0.5}),
    ("--sampler respaced --steps 500", respaced_ddpm, {"steps": 500}),
    ("--sampler dpmpp-2m --steps 20", dpmpp_2m, {"steps": 20}),
    ("--sampler dpmpp-2m", dpmpp_2m, {"steps": None}),
    ("--sampler ddim", ddim, {"steps": None, "eta": 0.0}),
    ("--sampler ddpm", ddpm, {"steps": None}),
    ("--sampler adversarial", adversarial, {"steps": None}),
    (["--sampler", "one-shot"], one_shot, {"steps": None}),
])
def test_parse_grammar(args, fn, kwargs):
    assert parse_sampler_args(args) == (fn, kwargs)


@pytest.mark.parametrize(("args", "message"), [
    ("--steps 50", "--sampler is required"),
    ("--sampler ddim --steps", "--steps needs a value"),
    ("--sampler ddim --steps fifty", "--steps must be a positive integer N or section"),
    ("--sampler ddim --eta x", "bad --steps/--eta value"),
    ("--sampler ddim --steps 0", "--steps must be a positive integer"),
    ("--sampler ddim --eta -1", "--eta must be >= 0"),
    ("--sampler respaced --eta 0.5", "applies to ddim only"),
    ("--sampler ddpm --steps 100", "use --sampler respaced"),
    ("--sampler one-shot --steps 4", "does not apply to the one-shot"),
    ("--sampler ddim --seed 3", "unknown sampler option '--seed'"),
    ("--sampler heun", "unknown sampler 'heun'"),
])
def test_parse_errors(args, message):
    with pytest.raises(UsageError, match=message):
        parse_sampler_args(args)


def test_resolve_for_typer_options():
    assert resolve_sampler("respaced") == (respaced_ddpm, {"steps": None})
    assert resolve_sampler("ddim", 25, 1.0) == (ddim, {"steps": 25, "eta": 1.0})


def _eps_zero(x, t, cond):
    return torch.zeros_like(x)


def test_sampler_argument_errors():
    diff = GaussianDiffusion(make_betas("linear", 1000))
    x = torch.zeros(1, 1)
    with pytest.raises(UsageError, match="no integer stride gives exactly 300 DDIM steps"):
        ddim(_eps_zero, x, diff, steps=300)
    with pytest.raises(UsageError, match="ddpm runs all 1000 steps"):
        ddpm(_eps_zero, x, diff, steps=10)
    with pytest.raises(UsageError, match="cannot take 2000 steps"):
        respaced_ddpm(_eps_zero, x, diff, steps=2000)
    with pytest.raises(UsageError, match="applies to the ddim sampler only"):
        dpmpp_2m(_eps_zero, x, diff, steps=10, eta=0.3)
    with pytest.raises(UsageError, match="needs the SynDiff VP schedule"):
        adversarial(_eps_zero, x, diff)
    with pytest.raises(UsageError, match="trained with 4 steps, not 8"):
        adversarial(_eps_zero, x, syndiff_vp(), steps=8)
    with pytest.raises(UsageError, match="20 steps asked of a 10-step chain"):
        dpmpp_2m(_eps_zero, x, GaussianDiffusion(make_betas("cosine", 10)), steps=20)


def test_respaced_accepts_section_strings():
    diff = GaussianDiffusion(make_betas("linear", 100), mean_type="x0")
    seen = []

    def model(x, t, cond):
        seen.append(int(t[0]))
        return torch.zeros_like(x)

    respaced_ddpm(model, torch.zeros(1, 1), diff, steps="5,2")
    # Sections of 50: stride 49/4 = 12.25 (Python rounds 24.5 to 24, as the reference), then 49.
    assert seen == [99, 50, 49, 37, 24, 12, 0]


@pytest.mark.parametrize("spacing", ["logsnr", "karras"])
def test_solver_timesteps_distinct_and_spaced(spacing):
    diff = GaussianDiffusion(make_betas("linear", 1000))
    ts = solver_timesteps(diff, 20, spacing)
    assert len(ts) == 20 and ts[0] == 999 and ts[-1] == 0 and (np.diff(ts) < 0).all()
    every = solver_timesteps(GaussianDiffusion(make_betas("cosine", 30)), 30, spacing)
    assert list(every) == list(range(29, -1, -1))
    if spacing == "logsnr":
        ab = diff.alphas_cumprod[ts]
        log_sigma = 0.5 * np.log((1 - ab) / ab)
        # Uniform in log sigma up to the snapping to trained steps.
        step = (log_sigma[0] - log_sigma[-1]) / 19
        assert np.allclose(-np.diff(log_sigma), step, rtol=0.35)


@pytest.mark.parametrize(("name", "T", "calls"), [
    ("ddpm", 300, 300), ("respaced", 1000, 250), ("respaced", 100, 100), ("ddim", 1000, 50),
    ("ddim", 4000, 50), ("ddim", 75, 38), ("dpmpp-2m", 1000, 20), ("dpmpp-2m", 12, 12),
    ("dpmpp-2m-karras", 1000, 20)])
def test_default_steps(name, T, calls):
    diff = GaussianDiffusion(make_betas("cosine", T))
    seen = []

    def model(x, t, cond):
        seen.append(int(t[0]))
        return torch.zeros_like(x)

    get_sampler(name)(model, torch.zeros(1, 1), diff)
    assert len(seen) == calls
