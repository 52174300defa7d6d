"""PNG figure of phantom subjects: MR T1w | MR T2w | CT (on the MR grid), three planes each.

Command (writes one head and one pelvis subject)::

    python -m medxlate.phantom.preview --out phantom_preview.png --seed 0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from medxlate.io.atomic import atomic_path
from medxlate.io.volume import Volume

PLANES = ("axial", "coronal", "sagittal")


def _plane(vol: Volume, plane: str, index: int) -> tuple[np.ndarray, list[float]]:
    """A 2D slice (rows = vertical axis, bottom = inferior/posterior) and its mm extent."""
    a, (sx, sy, sz) = vol.array, vol.spacing
    nx, ny, nz = vol.shape
    if plane == "axial":
        return a[:, :, index].T, [0, nx * sx, 0, ny * sy]
    if plane == "coronal":
        return a[:, index, :].T, [0, nx * sx, 0, nz * sz]
    return a[index, :, :].T, [0, ny * sy, 0, nz * sz]


def render_preview(rows: list[tuple[str, dict[str, Volume]]], path: Path | str,
                   overwrite: bool = False) -> None:
    """Write a grid of slices: for each (title, {"T1w": v, "T2w": v, "CT": v}) three rows.

    Volumes of one subject must share a grid (use the CT resampled onto the MR grid).
    Slices go through the centre of the grid. MR is windowed to [0, 99.5th percentile];
    CT to [-1000, 1600] HU. Axial and coronal images are shown in radiological view
    (patient right on the image left).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = list(rows[0][1])
    fig, axes = plt.subplots(3 * len(rows), len(columns),
                             figsize=(3.2 * len(columns), 3.0 * 3 * len(rows)), squeeze=False)
    for r, (title, vols) in enumerate(rows):
        for c, name in enumerate(columns):
            vol = vols[name]
            if vol.modality == "CT":
                vmin, vmax = -1000.0, 1600.0
            else:
                vmin, vmax = 0.0, float(np.percentile(vol.array, 99.5))
            for p, plane in enumerate(PLANES):
                index = vol.shape[{"axial": 2, "coronal": 1, "sagittal": 0}[plane]] // 2
                img, extent = _plane(vol, plane, index)
                ax = axes[3 * r + p, c]
                if plane != "sagittal":  # radiological convention: patient right on the left
                    img, extent = img[:, ::-1], [extent[1], extent[0], extent[2], extent[3]]
                ax.imshow(img, cmap="gray", vmin=vmin, vmax=vmax, origin="lower",
                          extent=extent, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if p == 0:
                    ax.set_title(f"{title}: {name}", fontsize=9)
                if c == 0:
                    ax.set_ylabel(plane, fontsize=9)
    fig.tight_layout()
    with atomic_path(path, overwrite) as tmp:
        fig.savefig(tmp, dpi=60, format="png")
    plt.close(fig)


def subject_rows(subject) -> tuple[str, dict[str, Volume]]:
    """Preview columns of a generated Subject (needs both contrasts and ct_on_mr)."""
    return subject.id, {"T1w": subject.mr["t1w"], "T2w": subject.mr["t2w"],
                        "CT": subject.ct_on_mr}


def preview_folder(folder: Path | str, path: Path | str, overwrite: bool = False) -> None:
    """Preview of a written subject folder: its MR contrast(s) and ct_on_mr (or the CT)."""
    from medxlate.io import read_volume

    folder = Path(folder)
    truth = json.loads((folder / "truth.json").read_text())
    files = truth["files"]
    vols = {}
    if "mr_t2" in files:
        vols["T1w"] = read_volume(folder / files["mr"], modality="MR")
        vols["T2w"] = read_volume(folder / files["mr_t2"], modality="MR")
    else:
        vols[files["mr_contrast"]] = read_volume(folder / files["mr"], modality="MR")
    ct_name = files.get("ct_on_mr", files["ct"])
    vols["CT"] = read_volume(folder / ct_name, modality="CT")
    render_preview([(truth["id"], vols)], path, overwrite=overwrite)


def main(argv: list[str] | None = None) -> None:
    """Generate one head and one pelvis subject and write their preview PNG."""
    from medxlate.phantom.subject import PhantomConfig, make_subject

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="PNG path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    for region in ("brain", "pelvis"):
        cfg = PhantomConfig(region, contrasts=("t1w", "t2w"), misalign_deg=0.0, misalign_mm=0.0)
        rows.append(subject_rows(make_subject(cfg, args.seed, 0)))
    render_preview(rows, args.out, overwrite=args.overwrite)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
