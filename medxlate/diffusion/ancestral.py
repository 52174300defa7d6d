"""Ancestral sampling (Ho et al. 2020, Alg. 2) over the full or a respaced chain."""

from __future__ import annotations

import torch

from medxlate.diffusion._common import check_eta, check_steps, index, parse_steps, randn_like
from medxlate.diffusion.gaussian import GaussianDiffusion
from medxlate.diffusion.respace import respaced, space_timesteps
from medxlate.errors import UsageError


def _ancestral(model, x, diffusion: GaussianDiffusion, cond, generator, callback):
    n = diffusion.num_timesteps
    for step, i in enumerate(reversed(range(n))):
        t = index(i, x)
        out = diffusion.p_mean_variance(diffusion.model_output(model, x, t, cond), x, t)
        if i > 0:
            x = out["mean"] + torch.exp(0.5 * out["log_variance"]) * randn_like(x, generator)
        else:
            x = out["mean"]
        if callback is not None:
            callback(step, n, x)
    return x


@torch.no_grad()
def ddpm(model, x_T, diffusion: GaussianDiffusion, *, steps=None, cond=None, eta=0.0,
         generator=None, callback=None):
    """Ancestral sampling over every step: x_{t-1} = mu_theta + sigma_t z, no noise at t=0.

    Args:
        model: ``model(x_t, t_model, cond)``.
        x_T: start noise (B, C, ...), standard normal.
        diffusion: the trained GaussianDiffusion.
        steps: None or the chain length (use ``respaced`` for fewer).
        cond: passed through to the model.
        eta: must be 0 (DDIM only).
        generator: torch.Generator for the per-step noise.
        callback: ``callback(i, n, x)`` after each step.
    """
    check_eta("ddpm", eta)
    steps = check_steps(steps, "ddpm")
    if steps is not None and steps != diffusion.num_timesteps:
        raise UsageError(f"ddpm runs all {diffusion.num_timesteps} steps; use --sampler "
                         f"respaced --steps {steps} for fewer")
    return _ancestral(model, x_T, diffusion, cond, generator, callback)


@torch.no_grad()
def respaced_ddpm(model, x_T, diffusion: GaussianDiffusion, *, steps=None, cond=None, eta=0.0,
                  generator=None, callback=None):
    """Ancestral sampling over a respaced subset: ``steps`` as in ``space_timesteps`` (an
    int N or a section string like "100,50"); None = 250 steps (the whole chain if shorter)."""
    check_eta("respaced", eta)
    steps = parse_steps(steps) if isinstance(steps, str) else check_steps(steps, "respaced")
    spec = min(250, diffusion.num_timesteps) if steps is None else steps
    try:
        kept = space_timesteps(diffusion.num_timesteps, spec)
    except ValueError as err:
        raise UsageError(f"respaced: {err}") from None
    return _ancestral(model, x_T, respaced(diffusion, kept), cond, generator, callback)
