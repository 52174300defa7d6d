"""SynDiff's loss terms (Ozbey et al. 2023, Sec. III-C; DDGAN, Xiao et al. 2022, Eq. 4-5).

Adversarial terms are non-saturating: the discriminator minimises
``softplus(-D(real)) + softplus(D(fake))``, a generator ``softplus(-D(fake))``. The R1
penalty (Mescheder et al. 2018) is ``r1_gamma / 2 * E ||grad_x D(x)||^2`` on real inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from medxlate.diffusion.gaussian import GaussianDiffusion


def d_real_loss(logits: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(D(real)), averaged."""
    return F.softplus(-logits.float()).mean()


def d_fake_loss(logits: torch.Tensor) -> torch.Tensor:
    """-log(1 - sigmoid(D(fake))), averaged."""
    return F.softplus(logits.float()).mean()


def g_adv_loss(logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss -log sigmoid(D(fake)), averaged."""
    return F.softplus(-logits.float()).mean()


def r1_penalty(logits: torch.Tensor, inputs: torch.Tensor, r1_gamma: float) -> torch.Tensor:
    """``r1_gamma / 2 * mean_b ||dD/dx_b||^2`` (``inputs`` must require grad; graph kept so
    the penalty itself can be backpropagated).

    Example:
        >>> x = torch.ones(2, 3, requires_grad=True)
        >>> float(r1_penalty((2 * x).sum(dim=1), x, 1.0))  # grad = 2 -> ||g||^2 = 12
        6.0
    """
    (grad,) = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
    return 0.5 * r1_gamma * grad.pow(2).flatten(1).sum(dim=1).mean()


def posterior_sample(post: GaussianDiffusion, x0_hat: torch.Tensor, x_tp1: torch.Tensor,
                     t: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """x_t ~ q(x_t | x_{t+1}, x0_hat) (Eq. 13-15), the mean where t == 0."""
    mean, _, log_var = post.q_posterior_mean_variance(x0_hat, x_tp1, t)
    noise = torch.randn(x_tp1.shape, generator=generator, device=x_tp1.device,
                        dtype=x_tp1.dtype)
    nonzero = (t != 0).to(x_tp1.dtype).view(-1, *([1] * (x_tp1.ndim - 1)))
    return mean + nonzero * torch.exp(0.5 * log_var) * noise
