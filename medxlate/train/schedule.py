"""Learning-rate schedules as a multiplier of each optimiser group's base LR."""

from __future__ import annotations

import math


def lr_factor(step: int, total: int, kind: str = "constant", warmup: int = 0,
              floor: float = 0.0) -> float:
    """Multiplier of the base LR for optimiser cycle ``step`` (0-based) of ``total``.

    Linear warm-up over ``warmup`` cycles (``(step + 1) / warmup``), then either constant 1 or
    a half-cosine from 1 down to ``floor`` at the last cycle (Loshchilov & Hutter 2017,
    Eq. 5 without restarts: ``floor + (1 - floor) * (1 + cos(pi * p)) / 2``).

    Example:
        >>> lr_factor(0, 100, "cosine", warmup=10)
        0.1
        >>> round(lr_factor(99, 100, "cosine", floor=0.1), 6)
        0.1
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    span = max(1, total - 1 - warmup)
    p = min(1.0, (step - warmup) / span)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * p))


def apply_lr(optimizers: dict, factor: float) -> None:
    """Set every group's LR to ``initial_lr * factor`` (``initial_lr`` recorded on first use)."""
    for opt in optimizers.values():
        for group in opt.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor
