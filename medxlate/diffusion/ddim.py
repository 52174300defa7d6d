"""DDIM sampling and its deterministic inverse (Song, Meng & Ermon 2021)."""

from __future__ import annotations

import torch

from medxlate.diffusion._common import check_steps, index, randn_like
from medxlate.diffusion.gaussian import GaussianDiffusion, extract
from medxlate.diffusion.respace import respaced, space_timesteps
from medxlate.errors import UsageError


def ddim_process(diffusion: GaussianDiffusion, steps) -> GaussianDiffusion:
    """The "ddim{steps}" respacing of ``diffusion``.

    steps=None takes the stride ceil(T/50): 50 steps when T is a multiple of 50, never more.
    """
    steps = check_steps(steps, "ddim")
    T = diffusion.num_timesteps
    if steps is None:
        return respaced(diffusion, range(0, T, -(-T // 50)))
    try:
        kept = space_timesteps(T, f"ddim{steps}")
    except ValueError as err:
        raise UsageError(f"ddim: {err}") from None
    return respaced(diffusion, kept)


@torch.no_grad()
def ddim(model, x_T, diffusion: GaussianDiffusion, *, steps=None, cond=None, eta=0.0,
         generator=None, callback=None):
    """DDIM (Eq. 12, Song et al. 2021) on the "ddim{steps}" respacing.

    x_{t-1} = sqrt(ab_prev) x0_hat + sqrt(1 - ab_prev - s^2) eps_hat + s z with
    s = eta sqrt((1 - ab_prev)/(1 - ab)) sqrt(1 - ab/ab_prev); eps_hat is re-derived from the
    (clipped) x0_hat. eta=0 is deterministic, eta=1 matches ancestral DDPM's variance.
    """
    if eta < 0:
        raise UsageError(f"ddim: eta must be >= 0, got {eta}")
    proc = ddim_process(diffusion, steps)
    x, n = x_T, proc.num_timesteps
    for step, i in enumerate(reversed(range(n))):
        t = index(i, x)
        out = proc.p_mean_variance(proc.model_output(model, x, t, cond), x, t)
        ab = extract(proc.alphas_cumprod, t, x.ndim)
        ab_prev = extract(proc.alphas_cumprod_prev, t, x.ndim)
        sigma = eta * torch.sqrt((1 - ab_prev) / (1 - ab)) * torch.sqrt(1 - ab / ab_prev)
        x = (torch.sqrt(ab_prev) * out["pred_x0"]
             + torch.sqrt((1 - ab_prev - sigma ** 2).clamp(min=0)) * out["eps"])
        if eta and i > 0:
            x = x + sigma * randn_like(x, generator)
        if callback is not None:
            callback(step, n, x)
    return x


@torch.no_grad()
def ddim_encode(model, x0, diffusion: GaussianDiffusion, *, steps=None, cond=None,
                callback=None, refine: int = 0):
    """Run the eta=0 DDIM ODE forwards: clean x0 -> x_T at the top kept step.

    Step i moves x from level i-1 (clean for i=0) to level i of the "ddim{steps}" chain:
    x_i = sqrt(ab_i) x0_hat + sqrt(1 - ab_i) eps with x0_hat = (x_{i-1} - sqrt(1 - ab_{i-1})
    eps) / sqrt(ab_{i-1}), eps first taken at the current point (level i-1; level 0 for the
    clean start), the usual first-order inversion. Each of ``refine`` fixed-point passes
    re-evaluates eps at the new x_i (one more model call), which makes the decoding step from
    x_i land back on x_{i-1}: ``ddim(model, ddim_encode(...), diffusion, steps=steps)``
    then returns x0 up to the fixed point's convergence.
    """
    if refine < 0:
        raise UsageError(f"ddim_encode: refine must be >= 0, got {refine}")
    proc = ddim_process(diffusion, steps)
    x, n = x0, proc.num_timesteps
    for i in range(n):
        t_i = index(i, x)
        ab_prev = extract(proc.alphas_cumprod_prev, t_i, x.ndim)
        ab = extract(proc.alphas_cumprod, t_i, x.ndim)
        # Where eps is evaluated: the current point first, then the new one (refinements).
        probe, t_probe = x, index(max(i - 1, 0), x)
        for _ in range(refine + 1):
            eps = proc.p_mean_variance(proc.model_output(model, probe, t_probe, cond),
                                       probe, t_probe)["eps"]
            x0_hat = (x - torch.sqrt(1 - ab_prev) * eps) / torch.sqrt(ab_prev)
            x_next = torch.sqrt(ab) * x0_hat + torch.sqrt(1 - ab) * eps
            probe, t_probe = x_next, t_i
        x = x_next
        if callback is not None:
            callback(i, n, x)
    return x
