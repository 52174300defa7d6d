"""Oracle and analytic models for the diffusion tests (imported by test_diffusion_*.py)."""

from __future__ import annotations

import numpy as np
import torch


def _per_sample(arr: np.ndarray, t: torch.Tensor, ndim: int) -> torch.Tensor:
    vals = torch.as_tensor(arr, dtype=torch.float64)[t.cpu()]
    return vals.reshape(-1, *([1] * (ndim - 1)))


class PointOracle:
    """The exact prediction for data concentrated on one point x_star.

    ``kind`` "eps", "x0" or "v"; ``learned`` appends C variance channels (v = 0.3).
    alphas_cumprod is the ORIGINAL chain's, indexed by the model timestep.
    """

    def __init__(self, x_star: torch.Tensor, alphas_cumprod, kind: str = "eps",
                 learned: bool = False):
        self.x_star, self.ab, self.kind, self.learned = x_star, alphas_cumprod, kind, learned
        self.seen: list[int] = []

    def __call__(self, x_t, t_model, cond=None):
        self.seen.append(int(t_model[0]))
        ab = _per_sample(self.ab, t_model, x_t.ndim)
        x_t64, x_star = x_t.double(), self.x_star.double()
        eps = (x_t64 - ab.sqrt() * x_star) / (1 - ab).sqrt()
        out = {"eps": eps, "x0": x_star.expand_as(x_t64),
               "v": ab.sqrt() * eps - (1 - ab).sqrt() * x_star}[self.kind].float()
        if self.learned:
            out = torch.cat([out, torch.full_like(out, 0.3)], dim=1)
        return out


class MixtureEps:
    """E[eps | x_t] for 1-D data x0 ~ sum_k w_k N(mu_k, s_k^2) (exact, in float64).

    Under component k, x_t ~ N(sqrt(ab) mu_k, ab s_k^2 + 1 - ab) and
    E[x0 | x_t, k] = mu_k + sqrt(ab) s_k^2 (x_t - sqrt(ab) mu_k) / (ab s_k^2 + 1 - ab);
    eps_hat = (x_t - sqrt(ab) E[x0 | x_t]) / sqrt(1 - ab).
    """

    weights = np.array([0.3, 0.7])
    means = np.array([-0.5, 0.4])
    stds = np.array([0.1, 0.15])

    def __init__(self, alphas_cumprod):
        self.ab = alphas_cumprod

    @classmethod
    def moments(cls) -> tuple[float, float]:
        mean = float((cls.weights * cls.means).sum())
        var = float((cls.weights * (cls.stds ** 2 + cls.means ** 2)).sum()) - mean ** 2
        return mean, var

    def __call__(self, x_t, t_model, cond=None):
        ab = _per_sample(self.ab, t_model, x_t.ndim)
        x = x_t.double()
        w, mu, s2 = (torch.as_tensor(a, dtype=torch.float64) for a in
                     (self.weights, self.means, self.stds ** 2))
        # Components on the last axis: x (B, 1) -> (B, 1, K).
        x, ab = x[..., None], ab[..., None]
        var_k = ab * s2 + 1 - ab
        log_r = torch.log(w) - 0.5 * torch.log(var_k) - 0.5 * (x - ab.sqrt() * mu) ** 2 / var_k
        r = torch.softmax(log_r, dim=-1)
        x0_k = mu + ab.sqrt() * s2 * (x - ab.sqrt() * mu) / var_k
        x0 = (r * x0_k).sum(-1)
        return ((x[..., 0] - ab[..., 0].sqrt() * x0) / (1 - ab[..., 0]).sqrt()).float()


class GaussianEps(MixtureEps):
    """E[eps | x_t] for Gaussian data N(0.3, 0.2^2): the reverse chain is linear-Gaussian."""

    weights = np.array([1.0])
    means = np.array([0.3])
    stds = np.array([0.2])
