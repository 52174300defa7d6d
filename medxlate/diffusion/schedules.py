"""Noise schedules: discrete beta sequences (float64) and SynDiff's 4-step VP grid.

Example:
    >>> betas = make_betas("linear", 1000)
    >>> betas.dtype, betas.shape, float(betas[0]), float(betas[-1])
    (dtype('float64'), (1000,), 0.0001, 0.02)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SCHEDULES = ("linear", "cosine", "scaled_linear")


def linear_betas(T: int, beta_start: float | None = None,
                 beta_end: float | None = None) -> np.ndarray:
    """Ho et al. 2020 linear schedule, rescaled so any T matches T=1000's path.

    Args:
        T: number of diffusion steps.
        beta_start: first beta; default 1e-4 * 1000 / T.
        beta_end: last beta; default 0.02 * 1000 / T.
    """
    scale = 1000.0 / T
    start = 1e-4 * scale if beta_start is None else beta_start
    end = 0.02 * scale if beta_end is None else beta_end
    return np.linspace(start, end, T, dtype=np.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal 2021 cosine schedule (Eq. 17): alpha_bar(t) = f(t)/f(0).

    f(u) = cos^2(((u + s)/(1 + s)) * pi/2); beta_t = 1 - alpha_bar(t)/alpha_bar(t-1),
    capped at ``max_beta`` to avoid the singularity at u = 1.
    """
    def f(u: float) -> float:
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - f((i + 1) / T) / f(i / T), max_beta) for i in range(T)]
    return np.asarray(betas, dtype=np.float64)


def scaled_linear_betas(T: int, beta_start: float = 0.0015,
                        beta_end: float = 0.0195) -> np.ndarray:
    """Latent-diffusion schedule: linspace in sqrt(beta), squared (Rombach et al. 2022)."""
    return np.linspace(beta_start ** 0.5, beta_end ** 0.5, T, dtype=np.float64) ** 2


def make_betas(kind: str, T: int, **kw) -> np.ndarray:
    """Betas of a named schedule as float64, shape (T,).

    Args:
        kind: "linear", "cosine" or "scaled_linear".
        T: number of steps (>= 1).
        **kw: schedule parameters (beta_start/beta_end, or s/max_beta for cosine).

    Raises:
        ValueError: unknown kind or T < 1.
    """
    if T < 1:
        raise ValueError(f"diffusion needs T >= 1 steps, got {T}")
    makers = {"linear": linear_betas, "cosine": cosine_betas,
              "scaled_linear": scaled_linear_betas}
    if kind not in makers:
        raise ValueError(f"unknown beta schedule {kind!r}; known: {', '.join(SCHEDULES)}")
    betas = makers[kind](T, **kw)
    if (betas <= 0).any() or (betas >= 1).any():
        raise ValueError(f"the {kind} schedule with T={T} and {kw or 'default bounds'} gives "
                         f"betas outside (0, 1) (from {betas.min():.4g} to {betas.max():.4g})")
    return betas


@dataclass(frozen=True)
class VPSchedule:
    """SynDiff's discretised variance-preserving schedule (Ozbey et al. 2023, Sec. III-A).

    Levels k = 0..n live on the time grid ``t[k]``; level 0 is (almost) clean data.
    Arrays indexed by level have length n + 1; ``betas`` (length n) holds beta_k for
    k = 1..n, the per-step noise between level k-1 and level k.

    Attributes:
        t: time grid t_k = (k/n)(1 - eps) + eps, shape (n+1,).
        alpha_bar: alpha_bar(t_k) of the continuous VP SDE, shape (n+1,).
        betas: beta_k = 1 - alpha_bar(t_k)/alpha_bar(t_{k-1}), k = 1..n, shape (n,).
        betas_full: ``betas`` preceded by the reference's beta_0 = 1e-8, shape (n+1,).
        a: sqrt(1 - betas_full), the per-step signal scale (forward pairs).
        sigma: sqrt(betas_full), the per-step noise scale.
        a_cum: cumulative product of ``a``: x_k = a_cum[k] x_0 + sigma_cum[k] eps.
        sigma_cum: sqrt(1 - a_cum^2).
    """

    t: np.ndarray
    alpha_bar: np.ndarray
    betas: np.ndarray
    betas_full: np.ndarray
    a: np.ndarray
    sigma: np.ndarray
    a_cum: np.ndarray
    sigma_cum: np.ndarray

    @property
    def n_steps(self) -> int:
        return len(self.betas)

    def posterior(self):
        """GaussianDiffusion over the n steps: its posterior at index i is q(x_i | x_{i+1}, x0)."""
        from medxlate.diffusion.gaussian import GaussianDiffusion
        return GaussianDiffusion(self.betas, mean_type="x0", var_type="fixed_small",
                                 clip_x0=False)

    def sample_posterior(self, x0_hat, x_next, k, generator=None):
        """x_k ~ q(x_k | x_{k+1}, x0_hat) (Eq. 13-15, Ozbey et al. 2023); the mean where k = 0.

        Differentiable (the SynDiff training step uses it for the fake x_k).
        """
        import torch

        mean, _, log_var = self.posterior().q_posterior_mean_variance(x0_hat, x_next, k)
        from medxlate.diffusion.noise import randn

        noise = randn(x_next.shape, generator, device=x_next.device, dtype=x_next.dtype)
        nonzero = (k != 0).to(mean.dtype).reshape(-1, *([1] * (x_next.ndim - 1)))
        return mean + nonzero * torch.exp(0.5 * log_var) * noise

    def q_sample(self, x0, k, noise=None, generator=None):
        """x_k = a_cum[k] x0 + sigma_cum[k] eps for integer levels ``k`` (LongTensor (B,))."""
        import torch

        from medxlate.diffusion.gaussian import extract
        if noise is None:
            noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        return extract(self.a_cum, k, x0.ndim) * x0 + extract(self.sigma_cum, k, x0.ndim) * noise

    def q_sample_pairs(self, x0, k, generator=None):
        """(x_k, x_{k+1}) with x_{k+1} = a[k+1] x_k + sigma[k+1] eps' (k in 0..n-1)."""
        import torch

        from medxlate.diffusion.gaussian import extract
        x_k = self.q_sample(x0, k, generator=generator)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_next = extract(self.a, k + 1, x0.ndim) * x_k + extract(self.sigma, k + 1, x0.ndim) * noise
        return x_k, x_next


def syndiff_vp(n_steps: int = 4, beta_min: float = 0.1, beta_max: float = 20.0,
               eps: float = 1e-3) -> VPSchedule:
    """The SynDiff schedule: n_steps large steps of the VP SDE (Song et al. 2021).

    alpha_bar(t) = exp(-0.5 t^2 (beta_max - beta_min) - t beta_min), i.e. 1 - var(t) of the
    VP SDE with linear beta(t); the reference implementation (icon-lab/SynDiff,
    ``var_func_vp``: log_mean_coeff = -0.25 t^2 (b_max - b_min) - 0.5 t b_min,
    alpha_bar = exp(2 log_mean_coeff)) uses exactly this form and grid, and prepends
    beta_0 = 1e-8 for the clean level.

    Example:
        >>> [round(float(b), 3) for b in syndiff_vp().betas]
        [0.478, 0.849, 0.956, 0.987]
    """
    if n_steps < 1:
        raise ValueError(f"syndiff_vp needs n_steps >= 1, got {n_steps}")
    t = np.arange(n_steps + 1, dtype=np.float64) / n_steps * (1 - eps) + eps
    alpha_bar = np.exp(-0.5 * t ** 2 * (beta_max - beta_min) - t * beta_min)
    betas = 1 - alpha_bar[1:] / alpha_bar[:-1]
    betas_full = np.concatenate([[1e-8], betas])
    a = np.sqrt(1 - betas_full)
    a_cum = np.cumprod(a)
    return VPSchedule(t=t, alpha_bar=alpha_bar, betas=betas, betas_full=betas_full, a=a,
                      sigma=np.sqrt(betas_full), a_cum=a_cum, sigma_cum=np.sqrt(1 - a_cum ** 2))
