"""Whether a run is learning: the best validation score, patience, a diverged loss.

Torch-free. The engine asks :func:`diverged` after every optimiser cycle and feeds every
validation to a :class:`BestTracker`, which says when ``best.safetensors`` must be rewritten
and when the score has not improved for ``patience`` validations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from medxlate.errors import MedxlateError

#: Validation keys that rank checkpoints, most trusted first: whole volumes through the
#: synthesize path, then the slice-level figures (HU for CT targets, network units for MR).
SCORE_KEYS = ("vol_mae_hu", "vol_mae", "val_mae_hu", "val_mae")


class TrainingDiverged(MedxlateError):
    """A loss or gradient norm became NaN or infinite (exit 1; the last checkpoint stays)."""

    exit_code = 1


def diverged(losses: dict[str, float]) -> list[str]:
    """Names of the values in ``losses`` that are NaN or infinite."""
    return [k for k, v in losses.items() if not math.isfinite(v)]


def divergence_message(step: int, bad: dict[str, float], last_checkpoint: int | None) -> str:
    what = ", ".join(f"{k}={v}" for k, v in bad.items()) or "on another rank"
    kept = (f"the last good checkpoint (step {last_checkpoint}) is kept"
            if last_checkpoint else "no checkpoint was written yet")
    return (f"training diverged at step {step} ({what}); stopped without saving, {kept}; "
            "lower the learning rate or check the data")


def score_key(metrics: dict[str, float]) -> str | None:
    """The key of ``metrics`` that ranks checkpoints (see SCORE_KEYS), or None."""
    return next((k for k in SCORE_KEYS if k in metrics), None)


@dataclass
class BestTracker:
    """The lowest validation score so far and how many validations ago it was reached.

    Args:
        patience: warn (and, with ``early_stop``, stop) after this many validations without
            an improvement; None or 0 never does.
    """

    patience: int | None = None
    best: float = math.inf
    best_step: int | None = None
    key: str | None = None
    since: int = 0           # validations since the best one

    def update(self, step: int, metrics: dict[str, float]) -> bool:
        """Record a validation; True when it is a new best (strictly lower score)."""
        key = self.key or score_key(metrics)
        if key is None or key not in metrics or not math.isfinite(metrics[key]):
            return False
        self.key = key
        if metrics[key] < self.best:
            self.best, self.best_step, self.since = float(metrics[key]), step, 0
            return True
        self.since += 1
        return False

    @property
    def stalled(self) -> bool:
        """True when the last ``patience`` validations did not improve on the best."""
        return bool(self.patience) and self.since >= int(self.patience)

    def stall_message(self) -> str:
        return (f"validation {self.key} has not improved for {self.since} validations "
                f"(best {self.best:.4g} at step {self.best_step})")


def restore_tracker(tracker: BestTracker, run_dir, step: int) -> None:
    """Replay the validations of ``run_dir/val.csv`` up to ``step`` (a resumed run keeps its
    best score and patience count)."""
    from pathlib import Path

    from medxlate.train.curves import read_numeric_csv

    for metrics in read_numeric_csv(Path(run_dir) / "val.csv"):
        if int(metrics["step"]) <= step:
            tracker.update(int(metrics["step"]), metrics)
