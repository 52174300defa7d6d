"""Samplers for generator-type models: SynDiff's adversarial posterior chain and one-shot GANs."""

from __future__ import annotations

import torch

from medxlate.diffusion import noise as rng
from medxlate.diffusion._common import check_eta, check_steps, index
from medxlate.diffusion.schedules import VPSchedule
from medxlate.errors import UsageError


@torch.no_grad()
def adversarial(model, x_T, diffusion: VPSchedule, *, steps=None, cond=None, eta=0.0,
                generator=None, callback=None, latent_dim: int = 100):
    """SynDiff's reverse chain (Ozbey et al. 2023, Eq. 13-15) over the VP schedule's n steps.

    For k = n-1..0: x0_hat = model(x_{k+1}, k, cond, z) with z ~ N(0, I_latent_dim), then
    x_k ~ q(x_k | x_{k+1}, x0_hat), the Gaussian posterior of the forward chain; the last
    step returns the posterior mean (no noise).

    Args:
        model: ``model(x, t, cond, z) -> x0_hat`` with t a LongTensor (B,) of step indices.
        x_T: start noise (B, C, H, W).
        diffusion: the :func:`~medxlate.diffusion.schedules.syndiff_vp` schedule.
        steps: None or the schedule's step count (fixed by training).
        generator: draws z and the posterior noise.
    """
    if not isinstance(diffusion, VPSchedule):
        raise UsageError("the adversarial sampler needs the SynDiff VP schedule (syndiff_vp)")
    check_eta("adversarial", eta)
    steps = check_steps(steps, "adversarial")
    n = diffusion.n_steps
    if steps is not None and steps != n:
        raise UsageError(f"adversarial: this model was trained with {n} steps, not {steps}")
    x = x_T
    for step, k in enumerate(reversed(range(n))):
        t = index(k, x)
        z = rng.randn((x.shape[0], latent_dim), generator, device=x.device, dtype=x.dtype)
        x = diffusion.sample_posterior(model(x, t, cond, z), x, t, generator=generator)
        if callback is not None:
            callback(step, n, x)
    return x


@torch.no_grad()
def one_shot(model, x_T, diffusion=None, *, steps=None, cond=None, eta=0.0, generator=None,
             callback=None):
    """A feed-forward generator: ``model(cond)``; x_T and diffusion are ignored."""
    check_eta("one-shot", eta)
    if check_steps(steps, "one-shot") is not None:
        raise UsageError("one-shot generators take no --steps")
    out = model(cond)
    if callback is not None:
        callback(0, 1, out)
    return out
