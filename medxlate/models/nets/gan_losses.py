"""Adversarial losses and small training helpers shared by the GAN families.

``vanilla`` is the original GAN objective written as binary cross-entropy on logits
(Goodfellow et al. 2014; pix2pix), ``lsgan`` the least-squares objective
``E[(D(x) - 1)^2]`` / ``E[D(G(z))^2]`` (Mao et al. 2017; CycleGAN, section 4).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

GAN_MODES = ("vanilla", "lsgan")


def gan_loss(logits: torch.Tensor, real: bool, mode: str = "vanilla") -> torch.Tensor:
    """Mean adversarial loss of a discriminator output map against the label ``real``.

    Example:
        >>> round(float(gan_loss(torch.zeros(1, 1, 2, 2), True)), 4)  # -log(sigmoid(0))
        0.6931
        >>> float(gan_loss(torch.ones(3), False, "lsgan"))
        1.0
    """
    target = torch.full_like(logits, 1.0 if real else 0.0)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(logits.float(), target.float())
    if mode == "lsgan":
        return F.mse_loss(logits.float(), target.float())
    raise ValueError(f"unknown gan_mode {mode!r}; choose from {', '.join(GAN_MODES)}")


@contextlib.contextmanager
def requires_grad(net: nn.Module, flag: bool) -> Iterator[None]:
    """Temporarily set ``requires_grad`` on every parameter of ``net``."""
    params = list(net.parameters())
    before = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(flag)
    try:
        yield
    finally:
        for p, b in zip(params, before, strict=True):
            p.requires_grad_(b)


def centre(x: torch.Tensor) -> torch.Tensor:
    """The centre channel (B, 1, H, W) of a (B, 2k+1, H, W) stack of context slices."""
    c = x.shape[1] // 2
    return x[:, c:c + 1]


def source_target(batch: dict[str, torch.Tensor],
                  config: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """(source with its context slices, centre target slice) for ``config["direction"]``."""
    direction = config.get("direction", "mri2ct")
    if direction == "mri2ct":
        return batch["mr"], centre(batch["ct"])
    if direction == "ct2mri":
        return batch["ct"], centre(batch["mr"])
    raise ValueError(f"unknown direction {direction!r}")
