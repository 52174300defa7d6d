"""PNG figures: a per-subject montage and a cohort box plot per metric (matplotlib, Agg).

Views are radiological: axial and coronal show the patient's right on the left of the
image; axial has anterior up, coronal and sagittal superior up, sagittal anterior left.
Pixel aspect follows the voxel spacing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medxlate.io.atomic import atomic_path

CT_WINDOW = (-1000.0, 1500.0)
DIFF_MAX_HU = 500.0


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def body_centre(mask: np.ndarray) -> tuple[int, int, int]:
    """Voxel index of the mask's centre of mass (rounded)."""
    centre = []
    for axis in range(3):
        counts = mask.sum(axis=tuple(a for a in range(3) if a != axis), dtype=np.float64)
        centre.append(int(np.rint((counts * np.arange(counts.size)).sum() / counts.sum())))
    return tuple(centre)  # type: ignore[return-value]


def planes(array: np.ndarray, centre, spacing) -> list[tuple[str, np.ndarray, float]]:
    """(name, 2D image ready for imshow(origin='lower'), aspect) for axial, coronal, sagittal.

    Canonical RAS+ arrays: axis 0 runs to the patient's right, 1 anterior, 2 superior.
    """
    i, j, k = centre
    sx, sy, sz = spacing
    axial = array[:, :, k].T[:, ::-1]  # rows y (anterior up), columns x reversed (R on left)
    coronal = array[:, j, :].T[:, ::-1]  # rows z (superior up), columns x reversed
    sagittal = array[i, :, :].T[:, ::-1]  # rows z, columns y reversed (anterior on the left)
    return [("axial", axial, sy / sx), ("coronal", coronal, sz / sx),
            ("sagittal", sagittal, sz / sy)]


def label_panel(ax, row: int, col: int, title: str, plane: str) -> None:
    """No ticks; the column's title on the first row, the plane's name on the first column."""
    ax.set_xticks([])
    ax.set_yticks([])
    if row == 0:
        ax.set_title(title, fontsize=10)
    if col == 0:
        ax.set_ylabel(plane, fontsize=10)


def _save(fig, path: Path, overwrite: bool) -> None:
    plt = _pyplot()
    try:
        with atomic_path(path, overwrite) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)


def montage(case_id: str, data, modality: str, path: Path, overwrite: bool = False) -> None:
    """Source (if any) | synthetic | reference | |difference| with colour bar, 3 planes.

    Args:
        case_id: subject id for the title.
        data: a :class:`medxlate.evaluate.run.Loaded` (images on the reference grid).
        modality: "CT" (HU window and HU difference) or "MR" (robust intensity window).
        path: PNG to write (atomically).
    """
    plt = _pyplot()
    centre = body_centre(data.mask)
    spacing = data.ref.spacing
    pred, ref = data.pred.array, data.ref.array
    if modality == "CT":
        window = CT_WINDOW
        diff_max, unit = DIFF_MAX_HU, "HU"
    else:
        lo, hi = np.percentile(ref[data.mask], [0.5, 99.5])
        window = (float(lo), float(hi) if hi > lo else float(lo) + 1.0)
        diff_max, unit = 0.5 * (window[1] - window[0]), "intensity"
    columns = []
    if data.source is not None:
        src = data.source.array
        body = src[data.mask]
        s_lo, s_hi = np.percentile(body, [0.5, 99.5]) if body.size else (src.min(), src.max())
        columns.append(("source", src, "gray", (float(s_lo), float(max(s_hi, s_lo + 1e-6)))))
    columns.append(("synthetic", pred, "gray", window))
    columns.append(("reference", ref, "gray", window))
    diff = np.where(data.mask, np.abs(pred - ref), 0.0)
    columns.append((f"|difference| ({unit}, in mask)", diff, "magma", (0.0, diff_max)))
    fig, axes = plt.subplots(3, len(columns), figsize=(3.2 * len(columns), 9.4), squeeze=False)
    for col, (title, image, cmap, (vmin, vmax)) in enumerate(columns):
        for row, (plane, img, aspect) in enumerate(planes(image, centre, spacing)):
            ax = axes[row, col]
            shown = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, origin="lower",
                              aspect=aspect, interpolation="nearest")
            label_panel(ax, row, col, title, plane)
            if col == len(columns) - 1:
                fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label=unit)
    fig.suptitle(f"{case_id}  (centre voxel {centre[0]}, {centre[1]}, {centre[2]}; "
                 "R on image left)", fontsize=11)
    fig.tight_layout()
    _save(fig, Path(path), overwrite)


def boxplots(records: list[dict], names: list[str], folder: Path,
             overwrite: bool = False) -> list[Path]:
    """One PNG per metric: ``folder/boxplot_<metric>.png`` with every subject's value."""
    plt = _pyplot()
    written = []
    for name in names:
        values = [r["metrics"].get(name) for r in records]
        values = [v for v in values if v is not None and np.isfinite(v)]
        if not values:
            continue
        fig, ax = plt.subplots(figsize=(3.2, 4.2))
        ax.boxplot(values, widths=0.5)
        jitter = np.linspace(-0.08, 0.08, len(values)) if len(values) > 1 else [0.0]
        ax.scatter(1 + np.asarray(jitter), values, s=12, color="tab:blue", zorder=3)
        ax.set_xticks([1], [name])
        ax.set_title(f"{name} (n={len(values)})", fontsize=10)
        fig.tight_layout()
        path = Path(folder) / f"boxplot_{name}.png"
        _save(fig, path, overwrite)
        written.append(path)
    return written
