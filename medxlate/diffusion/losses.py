"""Log-likelihood terms of the variational bound (nats; divide by log 2 for bits)."""

from __future__ import annotations

import torch


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension but the batch one."""
    return x.mean(dim=tuple(range(1, x.ndim)))


def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) per element, in nats."""
    # expm1(d) - d instead of -1 + e^d - d: no float32 cancellation when the variances match.
    d = logvar1 - logvar2
    return 0.5 * (torch.expm1(d) - d + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def discretized_gaussian_nll(x, means, log_scales, bin_width: float = 1 / 255) -> torch.Tensor:
    """-log P(x) per element, in nats, for data on a grid in [-1, 1] (Ho et al. 2020, Eq. 13).

    The bin of x is [x - bin_width, x + bin_width] (``bin_width`` is the half-spacing of the
    grid: 1/255 for 8-bit data as the reference, 1/(high - low) for whole-HU CT windowed to
    [low, high], 1/4024 for [-1024, 3000]); the lowest and highest
    bins extend to -inf and +inf. Uses the exact normal CDF.
    """
    inv_std = torch.exp(-log_scales)
    centred = x - means
    upper = inv_std * (centred + bin_width)
    lower = inv_std * (centred - bin_width)
    log_cdf_upper = torch.special.log_ndtr(upper)
    log_one_minus_cdf_lower = torch.special.log_ndtr(-lower)
    # Phi(u) - Phi(l) = Phi(-l) - Phi(-u): take the side where both CDFs are small (accurate).
    below = centred <= 0
    log_a = torch.where(below, log_cdf_upper, log_one_minus_cdf_lower)
    log_b = torch.where(below, torch.special.log_ndtr(lower), torch.special.log_ndtr(-upper))
    log_mid = log_a + torch.log(-torch.expm1((log_b - log_a).clamp(max=-1e-12)))
    edge = bin_width / 2
    log_probs = torch.where(x < -1 + edge, log_cdf_upper,
                            torch.where(x > 1 - edge, log_one_minus_cdf_lower, log_mid))
    return -log_probs


def data_bin_half_width(target_is_ct: bool, normalisation: dict | None = None) -> float:
    """Half-width of a data bin in [-1, 1] units for :func:`discretized_gaussian_nll`.

    CT is stored in whole HU, and the dataset's window [low, high] maps high - low HU onto
    [-1, 1], so neighbouring HU values lie 2 / (high - low) apart: the bin of x is
    x +- 1 / (high - low) (1/4024 for [-1024, 3000]), and the bins of all HU values tile the
    line exactly. MR targets have no intensity grid; they keep the reference's 8-bit 1/255.
    """
    if not target_is_ct:
        return 1.0 / 255.0
    from medxlate.intensity import DEFAULT_NORMALISATION

    window = (normalisation or DEFAULT_NORMALISATION)["ct"]
    return 1.0 / (float(window["high"]) - float(window["low"]))
