"""Discrete Gaussian diffusion (Ho et al. 2020; Nichol & Dhariwal 2021).

Index convention (as improved-diffusion): x at index t in 0..T-1 is the noisy sample with
alpha_bar[t] = prod_{s<=t} (1 - beta_s); the reverse step at index t goes to index t-1,
index 0 goes to clean data. Schedules are float64 numpy arrays; per-timestep values are
gathered on x's device and cast to float32, broadcast to x's shape.

Model convention: ``model(x_t, t_model, cond) -> Tensor`` with ``t_model`` the ORIGINAL
timestep (``timestep_map[t]`` for a respaced process) as a LongTensor (B,). The output has
C channels (the mean-type prediction), or 2C for ``learned_range`` (prediction, then the
variance interpolation v in [-1, 1]).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from medxlate.diffusion.losses import discretized_gaussian_nll, mean_flat, normal_kl

MEAN_TYPES = ("eps", "x0", "v")
VAR_TYPES = ("fixed_small", "fixed_large", "learned_range")
LOSSES = ("mse", "hybrid")


def extract(arr: np.ndarray, t: torch.Tensor, ndim: int) -> torch.Tensor:
    """arr[t] as float32 on t's device, shaped (B, 1, ..., 1) with ``ndim`` dimensions."""
    # Cast on the CPU first: some devices (MPS) have no float64.
    table = torch.as_tensor(np.asarray(arr, dtype=np.float32)).to(t.device)
    return table[t].reshape(t.shape[0], *([1] * (ndim - 1)))


class GaussianDiffusion:
    """Forward process, posterior, model parametrisations and losses for one beta schedule.

    Args:
        betas: float array (T,) in (0, 1).
        mean_type: what the model predicts: "eps", "x0" or "v" (Salimans & Ho 2022).
        var_type: "fixed_small" (beta_tilde), "fixed_large" (beta) or "learned_range".
        clip_x0: clamp predicted x0 to [-1, 1] (off for latent models).
        timestep_map: original timestep of each index (set by respacing); None = identity.
    """

    def __init__(self, betas, mean_type: str = "eps", var_type: str = "fixed_small",
                 clip_x0: bool = True, timestep_map=None):
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or len(betas) == 0 or (betas <= 0).any() or (betas >= 1).any():
            raise ValueError("betas must be a non-empty 1-D array with values in (0, 1)")
        if mean_type not in MEAN_TYPES:
            raise ValueError(f"mean_type must be one of {MEAN_TYPES}, got {mean_type!r}")
        if var_type not in VAR_TYPES:
            raise ValueError(f"var_type must be one of {VAR_TYPES}, got {var_type!r}")
        self.betas = betas
        self.mean_type, self.var_type, self.clip_x0 = mean_type, var_type, clip_x0
        self.num_timesteps = T = len(betas)
        self.timestep_map = (np.arange(T, dtype=np.int64) if timestep_map is None
                             else np.asarray(timestep_map, dtype=np.int64))
        if self.timestep_map.shape != (T,):
            raise ValueError("timestep_map needs one original timestep per beta")

        self.alphas = 1.0 - betas
        self.alphas_cumprod = ab = np.cumprod(self.alphas)
        self.alphas_cumprod_prev = ab_prev = np.append(1.0, ab[:-1])
        self.alphas_cumprod_next = np.append(ab[1:], 0.0)
        self.sqrt_alphas_cumprod = np.sqrt(ab)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - ab)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / ab)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / ab - 1.0)
        # Eq. 7, Ho et al. 2020: q(x_{t-1} | x_t, x0) = N(coef1 x0 + coef2 x_t, beta_tilde).
        self.posterior_variance = betas * (1.0 - ab_prev) / (1.0 - ab)
        # beta_tilde_0 = 0: use beta_tilde_1 in its log, as improved-diffusion does.
        first = self.posterior_variance[1] if T > 1 else betas[0]
        self.posterior_log_variance_clipped = np.log(np.append(first, self.posterior_variance[1:]))
        self.posterior_mean_coef1 = betas * np.sqrt(ab_prev) / (1.0 - ab)
        self.posterior_mean_coef2 = (1.0 - ab_prev) * np.sqrt(self.alphas) / (1.0 - ab)

    # -- forward process ------------------------------------------------------------------
    def q_mean_variance(self, x0, t):
        """Mean, variance and log variance of q(x_t | x0)."""
        mean = extract(self.sqrt_alphas_cumprod, t, x0.ndim) * x0
        var = extract(1.0 - self.alphas_cumprod, t, x0.ndim)
        return mean, var, extract(np.log(1.0 - self.alphas_cumprod), t, x0.ndim)

    def q_sample(self, x0, t, noise=None, generator=None):
        """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps (Eq. 4, Ho et al. 2020)."""
        if noise is None:
            noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        return (extract(self.sqrt_alphas_cumprod, t, x0.ndim) * x0
                + extract(self.sqrt_one_minus_alphas_cumprod, t, x0.ndim) * noise)

    def q_posterior_mean_variance(self, x0, x_t, t):
        """Mean, variance and clipped log variance of q(x_{t-1} | x_t, x0)."""
        n = x_t.ndim
        mean = (extract(self.posterior_mean_coef1, t, n) * x0
                + extract(self.posterior_mean_coef2, t, n) * x_t)
        return (mean, extract(self.posterior_variance, t, n),
                extract(self.posterior_log_variance_clipped, t, n))

    # -- parametrisations -----------------------------------------------------------------
    def x0_from_eps(self, x_t, t, eps):
        n = x_t.ndim
        return (extract(self.sqrt_recip_alphas_cumprod, t, n) * x_t
                - extract(self.sqrt_recipm1_alphas_cumprod, t, n) * eps)

    def eps_from_x0(self, x_t, t, x0):
        n = x_t.ndim
        return ((extract(self.sqrt_recip_alphas_cumprod, t, n) * x_t - x0)
                / extract(self.sqrt_recipm1_alphas_cumprod, t, n))

    def v_from_x0_eps(self, x0, eps, t):
        """v = sqrt(ab) eps - sqrt(1 - ab) x0 (Salimans & Ho 2022, Sec. 4)."""
        n = x0.ndim
        return (extract(self.sqrt_alphas_cumprod, t, n) * eps
                - extract(self.sqrt_one_minus_alphas_cumprod, t, n) * x0)

    def x0_from_v(self, x_t, t, v):
        n = x_t.ndim
        return (extract(self.sqrt_alphas_cumprod, t, n) * x_t
                - extract(self.sqrt_one_minus_alphas_cumprod, t, n) * v)

    def eps_from_v(self, x_t, t, v):
        n = x_t.ndim
        return (extract(self.sqrt_one_minus_alphas_cumprod, t, n) * x_t
                + extract(self.sqrt_alphas_cumprod, t, n) * v)

    # -- the model ------------------------------------------------------------------------
    def model_timesteps(self, t: torch.Tensor) -> torch.Tensor:
        """Original timesteps the model sees for indices ``t`` (LongTensor (B,))."""
        return torch.as_tensor(self.timestep_map, device=t.device)[t]

    def model_output(self, model, x_t, t, cond=None):
        """Call ``model(x_t, t_model, cond)`` with the mapped original timesteps."""
        return model(x_t, self.model_timesteps(t), cond)

    def split_output(self, model_out, channels: int):
        """(prediction, variance values or None) from a raw model output."""
        if self.var_type == "learned_range":
            if model_out.shape[1] != 2 * channels:
                raise ValueError(f"learned_range needs 2C={2 * channels} output channels, "
                                 f"got {model_out.shape[1]}")
            return model_out[:, :channels], model_out[:, channels:]
        if model_out.shape[1] != channels:
            raise ValueError(f"expected {channels} output channels, got {model_out.shape[1]}")
        return model_out, None

    def model_log_variance(self, var_values, t, ndim: int):
        """(variance, log variance) of p(x_{t-1} | x_t) for this process's var_type."""
        if self.var_type == "learned_range":
            # Eq. 15, Nichol & Dhariwal 2021: log sigma^2 = frac log beta + (1-frac) log beta_tilde.
            min_log = extract(self.posterior_log_variance_clipped, t, ndim)
            max_log = extract(np.log(self.betas), t, ndim)
            frac = (var_values + 1) / 2
            log_var = frac * max_log + (1 - frac) * min_log
            return torch.exp(log_var), log_var
        if self.var_type == "fixed_large":
            var = np.append(self.posterior_variance[1:2], self.betas[1:])
            if self.num_timesteps == 1:
                var = self.betas
            return extract(var, t, ndim), extract(np.log(var), t, ndim)
        return (extract(self.posterior_variance, t, ndim),
                extract(self.posterior_log_variance_clipped, t, ndim))

    def p_mean_variance(self, model_out, x_t, t, clip_x0: bool | None = None) -> dict:
        """Reverse-step Gaussian p(x_{t-1} | x_t) from a raw model output.

        Returns:
            dict with "mean", "variance", "log_variance", "pred_x0" (clipped if clip_x0)
            and "eps" (re-derived from the clipped x0, as DDIM uses it).
        """
        clip = self.clip_x0 if clip_x0 is None else clip_x0
        pred, var_values = self.split_output(model_out, x_t.shape[1])
        variance, log_variance = self.model_log_variance(var_values, t, x_t.ndim)
        if self.mean_type == "eps":
            pred_x0 = self.x0_from_eps(x_t, t, pred)
        elif self.mean_type == "x0":
            pred_x0 = pred
        else:
            pred_x0 = self.x0_from_v(x_t, t, pred)
        if clip:
            pred_x0 = pred_x0.clamp(-1, 1)
        eps = self.eps_from_x0(x_t, t, pred_x0)
        mean, _, _ = self.q_posterior_mean_variance(pred_x0, x_t, t)
        return {"mean": mean, "variance": variance, "log_variance": log_variance,
                "pred_x0": pred_x0, "eps": eps}

    # -- losses ---------------------------------------------------------------------------
    def sample_timesteps(self, batch: int, device=None, generator=None) -> torch.Tensor:
        """Uniform indices in 0..T-1, LongTensor (batch,)."""
        return torch.randint(0, self.num_timesteps, (batch,), device=device, generator=generator)

    def vb_terms_bpd(self, model_out, x0, x_t, t, nll_bin_width: float = 1 / 255,
                     clip_x0: bool = False):
        """L_t in bits per dimension, shape (B,): KL(q || p) for t > 0, decoder NLL at t = 0.

        Uses the variance (and mean) implied by ``model_out``; detach its mean channels
        beforehand to train only the variance with this term. The predicted x0 is not
        clipped by default (as improved-diffusion's training loss).
        """
        true_mean, _, true_log_var = self.q_posterior_mean_variance(x0, x_t, t)
        out = self.p_mean_variance(model_out, x_t, t, clip_x0=clip_x0)
        kl = mean_flat(normal_kl(true_mean, true_log_var, out["mean"], out["log_variance"]))
        nll = mean_flat(discretized_gaussian_nll(x0, out["mean"], 0.5 * out["log_variance"],
                                                 bin_width=nll_bin_width))
        return torch.where(t == 0, nll, kl) / math.log(2.0)

    def training_losses(self, model, x0, t, cond=None, noise=None, loss: str = "mse",
                        vlb_weight: float = 0.001, nll_bin_width: float = 1 / 255,
                        generator=None) -> dict:
        """Per-sample losses (B,) for indices ``t``: "loss", "mse" and, for hybrid, "vb".

        "mse": L_simple on the mean-type target (fixed variances only).
        "hybrid" (learned_range only): L_simple + lambda * L_vlb with L_vlb estimated as
        T * L_t (Eq. 16, Nichol & Dhariwal 2021) and the mean frozen inside L_t, so the VLB
        term trains the variance alone; lambda = ``vlb_weight`` (0.001 = improved-diffusion).
        """
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if (loss == "hybrid") != (self.var_type == "learned_range"):
            raise ValueError("use loss='hybrid' with var_type='learned_range' and loss='mse' "
                             f"with fixed variances (got {loss!r} with {self.var_type!r})")
        if noise is None:
            noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = self.q_sample(x0, t, noise)
        model_out = self.model_output(model, x_t, t, cond)
        pred, var_values = self.split_output(model_out, x0.shape[1])
        target = {"eps": noise, "x0": x0}.get(self.mean_type)
        if target is None:
            target = self.v_from_x0_eps(x0, noise, t)
        terms = {"mse": mean_flat((target - pred.float()) ** 2)}
        if loss == "hybrid":
            frozen = torch.cat([pred.detach(), var_values], dim=1)
            terms["vb"] = self.vb_terms_bpd(frozen, x0, x_t, t, nll_bin_width)
            terms["loss"] = terms["mse"] + vlb_weight * self.num_timesteps * terms["vb"]
        else:
            terms["loss"] = terms["mse"]
        return terms
