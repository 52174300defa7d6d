"""Helpers shared by the samplers: argument checks, noise, per-step index tensors."""

from __future__ import annotations

import torch

from medxlate.diffusion import noise as rng
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


def parse_steps(value) -> int | str | None:
    """``--steps``: a positive int N, or improved-diffusion section counts "a,b,c" (the chain
    cut in equal sections with a, b, c steps each; :func:`~medxlate.diffusion.respace.
    space_timesteps`), returned as the normalised string; None stays None.

    Raises:
        UsageError: anything else, e.g. "0", "1.5" or "ddim50" (use --sampler ddim --steps 50).
    """
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return check_steps(value, "the sampler")
    text = str(value).strip()
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        hint = (f" (for DDIM's stride spacing use --sampler ddim --steps {text[4:]})"
                if text.lower().startswith("ddim") else "")
        raise UsageError(f"--steps must be a positive integer N or section counts a,b,c "
                         f"(e.g. 100,50), got {text!r}{hint}")
    return int(parts[0]) if len(parts) == 1 else ",".join(str(int(p)) for p in parts)


def randn_like(x: torch.Tensor, generator) -> torch.Tensor:
    """Standard normal noise shaped like x on x's device, from ``generator`` (a
    torch.Generator, a :class:`~medxlate.diffusion.noise.PerSample` or None)."""
    return rng.randn(x.shape, generator, device=x.device, dtype=x.dtype)


def index(i: int, x: torch.Tensor) -> torch.Tensor:
    """The chain index i for every sample of the batch, LongTensor (B,)."""
    return torch.full((x.shape[0],), i, device=x.device, dtype=torch.long)
