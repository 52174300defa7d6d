"""``RUN_DIR/curves.png``: training losses and validation MAE against step and wall time.

Torch-free (matplotlib's Agg backend, reading train.csv and val.csv), so it can redraw the
curves of any run folder: ``python -m medxlate.train.curves RUN_DIR``.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

from medxlate.io.atomic import atomic_path

# Validation figures drawn, in order of preference (at most two: volume and slice MAE).
VAL_KEYS = ("vol_mae_hu", "vol_mae", "val_mae_hu", "val_mae")
# Columns of train.csv that are not losses.
NOT_LOSSES = ("step", "lr_factor", "it_s", "elapsed_s")


def read_numeric_csv(path: Path) -> list[dict[str, float]]:
    """The rows of a run's CSV log (train.csv, val.csv) with their numeric cells as floats
    (empty or text cells left out); [] when the file is absent."""
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            parsed = {}
            for k, v in row.items():
                try:
                    parsed[k] = float(v)
                except (TypeError, ValueError):
                    continue
            rows.append(parsed)
    return rows


def draw_curves(run_dir: Path | str, out: Path | str | None = None) -> Path | None:
    """Draw the run's curves into ``out`` (default ``RUN_DIR/curves.png``) atomically;
    None when train.csv has no rows yet."""
    run_dir = Path(run_dir)
    train, val = read_numeric_csv(run_dir / "train.csv"), read_numeric_csv(run_dir / "val.csv")
    if not train:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    losses = [k for k in train[0] if k not in NOT_LOSSES and not k.startswith("grad_norm")]
    for row in train[1:]:
        losses += [k for k in row if k not in losses and k not in NOT_LOSSES
                   and not k.startswith("grad_norm")]
    val_keys = [k for k in VAL_KEYS if any(k in r for r in val)]
    val_keys = ([k for k in val_keys if k.startswith("vol_")][:1]
                + [k for k in val_keys if k.startswith("val_")][:1])
    fig = Figure(figsize=(11, 7), dpi=90)
    axes = fig.subplots(2, 2)
    for col, (x_key, x_label) in enumerate((("step", "step"), ("elapsed_s", "wall time (min)"))):
        scale = 1.0 if x_key == "step" else 1 / 60
        ax = axes[0][col]
        for key in losses:
            pts = [(r[x_key] * scale, r[key]) for r in train
                   if x_key in r and key in r and math.isfinite(r[key])]
            if pts:
                ax.plot(*zip(*pts), label=key, lw=1)
        ax.set_xlabel(x_label)
        ax.set_ylabel("training loss")
        if losses and all(r.get(k, 1) > 0 for r in train for k in losses):
            ax.set_yscale("log")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        ax = axes[1][col]
        for key in val_keys:
            pts = [(r[x_key] * scale, r[key]) for r in val
                   if x_key in r and key in r and math.isfinite(r[key])]
            if pts:
                label = {"vol": "whole volumes", "val": "slices"}[key[:3]]
                ax.plot(*zip(*pts), marker="o", ms=3, label=f"{key} ({label})")
                best = min(pts, key=lambda p: p[1])
                ax.scatter([best[0]], [best[1]], s=60, facecolors="none", edgecolors="k")
        ax.set_xlabel(x_label)
        ax.set_ylabel("validation MAE" + (" (HU)" if any(k.endswith("_hu") for k in val_keys)
                                          else ""))
        if val_keys:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no validation yet", ha="center", va="center",
                    transform=ax.transAxes)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{run_dir.name}: step {int(train[-1]['step'])}")
    fig.tight_layout()
    out = Path(out) if out is not None else run_dir / "curves.png"
    with atomic_path(out, overwrite=True) as tmp:
        fig.savefig(tmp, format="png")
    return out


if __name__ == "__main__":  # pragma: no cover - a convenience for a run folder by hand
    for arg in sys.argv[1:]:
        print(draw_curves(arg))
