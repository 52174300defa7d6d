"""Helpers shared by the samplers: argument checks, noise, per-step index tensors."""

from __future__ import annotations

import torch

from medxlate.errors import UsageError

# What steps=None means (None = the whole chain); a default never exceeds the chain.
DEFAULT_STEPS: dict[str, int | None] = {
    "ddpm": None, "respaced": 250, "ddim": 50, "dpmpp-2m": 20, "dpmpp-2m-karras": 20,
    "adversarial": None, "one-shot": None,
}


def check_eta(name: str, eta: float) -> None:
    """Only DDIM has an eta; refuse a non-zero one elsewhere rather than ignore it."""
    if eta:
        raise UsageError(f"--eta applies to the ddim sampler only (got eta={eta} for {name})")


def check_steps(steps, name: str) -> int | None:
    """A positive int (or None); the message names the sampler."""
    if steps is None:
        return None
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UsageError(f"--steps for {name} must be a positive integer, got {steps!r}")
    return steps


def randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like x, drawn from ``generator`` on x's device."""
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def index(i: int, x: torch.Tensor) -> torch.Tensor:
    """The chain index i for every sample of the batch, LongTensor (B,)."""
    return torch.full((x.shape[0],), i, device=x.device, dtype=torch.long)
