"""DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) for a discrete-time model.

The solver works on x~ = x / sqrt(alpha_bar) = x0 + sigma eps with sigma = sqrt((1-ab)/ab)
and lambda = -log sigma (half the log-SNR). The model is discrete-time, so every grid sigma
is snapped to a distinct trained timestep and the solver uses that timestep's exact sigma:
the network is only ever queried where it was trained.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from medxlate.diffusion._common import check_eta, check_steps, index
from medxlate.diffusion.gaussian import GaussianDiffusion
from medxlate.errors import UsageError

SPACINGS = ("logsnr", "karras")


def solver_timesteps(diffusion: GaussianDiffusion, steps: int, spacing: str = "logsnr",
                     rho: float = 7.0) -> np.ndarray:
    """``steps`` distinct chain indices, descending from the top, spaced in sigma.

    "logsnr": uniform in log sigma (uniform log-SNR, Lu et al. 2022); "karras": uniform in
    sigma^(1/rho) (Karras et al. 2022, Eq. 5, rho = 7). Each sigma goes to the nearest
    index in log sigma, pushed down where needed to keep the indices distinct.
    """
    n = diffusion.num_timesteps
    if steps > n:
        raise UsageError(f"dpmpp-2m: {steps} steps asked of a {n}-step chain")
    if spacing not in SPACINGS:
        raise UsageError(f"dpmpp-2m: spacing must be one of {SPACINGS}, got {spacing!r}")
    ab = diffusion.alphas_cumprod
    log_sigmas = 0.5 * np.log((1 - ab) / ab)
    s_min, s_max = math.exp(log_sigmas[0]), math.exp(log_sigmas[-1])
    if spacing == "logsnr":
        grid = np.linspace(log_sigmas[-1], log_sigmas[0], steps)
    else:
        ramp = np.linspace(0.0, 1.0, steps)
        inv = s_max ** (1 / rho) + ramp * (s_min ** (1 / rho) - s_max ** (1 / rho))
        grid = rho * np.log(inv)
    picked = []
    for k, g in enumerate(grid):
        j = int(np.argmin(np.abs(log_sigmas - g)))
        if picked:
            j = min(j, picked[-1] - 1)
        picked.append(max(j, steps - 1 - k))
    return np.asarray(picked, dtype=np.int64)


@torch.no_grad()
def dpmpp_2m(model, x_T, diffusion: GaussianDiffusion, *, steps=None, cond=None, eta=0.0,
             generator=None, callback=None, spacing: str = "logsnr"):
    """DPM-Solver++(2M) in data-prediction form: ``steps`` model calls (None = 20, or the
    whole chain if shorter), deterministic.

    With learned-range variance the prediction channels are split off first (the variance
    is not used by the ODE). ``generator`` is unused: the solver draws no noise.
    """
    check_eta("dpmpp-2m", eta)
    steps = check_steps(steps, "dpmpp-2m") or min(20, diffusion.num_timesteps)
    ts = solver_timesteps(diffusion, steps, spacing)
    ab = diffusion.alphas_cumprod[ts]
    sigmas = np.append(np.sqrt((1 - ab) / ab), 0.0)
    x = x_T * math.sqrt(1 + sigmas[0] ** 2)
    old_denoised = None
    for i, j in enumerate(ts):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        x_vp = x / math.sqrt(1 + s ** 2)
        t = index(int(j), x)
        denoised = diffusion.p_mean_variance(diffusion.model_output(model, x_vp, t, cond),
                                             x_vp, t)["pred_x0"]
        if s_next == 0:
            x = denoised
        else:
            h = math.log(s / s_next)
            if old_denoised is None:
                d = denoised
            else:
                r = math.log(float(sigmas[i - 1]) / s) / h
                d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = (s_next / s) * x - math.expm1(-h) * d
        old_denoised = denoised
        if callback is not None:
            callback(i, len(ts), x / math.sqrt(1 + s_next ** 2))
    return x


def dpmpp_2m_karras(model, x_T, diffusion: GaussianDiffusion, *, steps=None, cond=None,
                    eta=0.0, generator=None, callback=None):
    """:func:`dpmpp_2m` on Karras et al. (2022) sigmas (rho = 7)."""
    return dpmpp_2m(model, x_T, diffusion, steps=steps, cond=cond, eta=eta,
                    generator=generator, callback=callback, spacing="karras")
