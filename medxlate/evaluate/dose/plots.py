"""--plots with --dose: reference dose, synthetic dose and their difference through the
target's centre (three planes), and the target and body DVHs of both (one PNG per subject)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medxlate.evaluate.plots import _pyplot, _save, body_centre, label_panel, planes


def cumulative_dvh(dose: np.ndarray, mask: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """% of the structure receiving at least each dose in ``bins``."""
    values = np.sort(dose[mask])
    return 100.0 * (values.size - np.searchsorted(values, bins, side="left")) / values.size


def dose_figure(case_id: str, ct: np.ndarray, ref: np.ndarray, pred: np.ndarray,
                target: np.ndarray, body: np.ndarray, rx: float, path: Path,
                overwrite: bool = False, spacing=(1.0, 1.0, 1.0)) -> None:
    plt = _pyplot()
    centre = body_centre(target)
    diff = np.where(body, pred - ref, 0.0) / rx * 100.0
    lim = max(float(np.abs(diff).max()), 1.0)
    columns = [("dose on reference (Gy)", ref, "jet", (0.0, 1.1 * rx)),
               ("dose on synthetic (Gy)", pred, "jet", (0.0, 1.1 * rx)),
               ("synthetic - reference (% Rx)", diff, "RdBu_r", (-lim, lim))]
    fig, axes = plt.subplots(3, 4, figsize=(14.0, 9.4), squeeze=False)
    for col, (title, image, cmap, (vmin, vmax)) in enumerate(columns):
        for row, ((plane, img, aspect), (_, ctimg, _)) in enumerate(
                zip(planes(image, centre, spacing), planes(ct, centre, spacing))):
            ax = axes[row, col]
            ax.imshow(ctimg, cmap="gray", vmin=-1000, vmax=1500, origin="lower", aspect=aspect)
            alpha = 0.55 if col < 2 else 0.8
            shown = ax.imshow(np.ma.masked_where(np.abs(img) < 1e-6, img), cmap=cmap, vmin=vmin,
                              vmax=vmax, origin="lower", aspect=aspect, alpha=alpha)
            label_panel(ax, row, col, title, plane)
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    bins = np.linspace(0.0, 1.2 * rx, 241)
    gs = axes[0, 3].get_gridspec()
    for ax in axes[:, 3]:
        ax.remove()
    ax = fig.add_subplot(gs[:, 3])
    for name, mask, colour in (("target", target, "tab:red"), ("body", body, "tab:blue")):
        ax.plot(bins, cumulative_dvh(ref, mask, bins), color=colour, label=f"{name} reference")
        ax.plot(bins, cumulative_dvh(pred, mask, bins), color=colour, linestyle="--",
                label=f"{name} synthetic")
    ax.set_xlabel("dose (Gy)")
    ax.set_ylabel("volume (%)")
    ax.set_title("DVH", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(f"{case_id}: dose (R on image left, through the target's centre)", fontsize=11)
    fig.tight_layout()
    _save(fig, Path(path), overwrite)
