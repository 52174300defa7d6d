"""Sagittal montage: 3D ALDM vs 2D (axial-slice) pix2pix on one held-out head phantom.

A 2D model translates each axial slice on its own, so neighbouring slices disagree and a
sagittal cut through its output shows horizontal striping; a 3D model's output is continuous
along every axis. Rows: T1w input, CT truth, ALDM sCT, pix2pix sCT, T2w truth, ALDM T2.

Run: ``python examples/aldm_sagittal.py SUBJECT_DIR ALDM_CT ALDM_T2 PIX2PIX_CT OUT.png``
(SUBJECT_DIR from `medxlate phantom --contrast both`; the others from `medxlate synthesize`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from medxlate.io.readers import read_volume


def sagittal(path: Path) -> tuple[np.ndarray, float]:
    """The mid-sagittal slice of a canonical (RAS+) volume, superior up, and its aspect."""
    vol = read_volume(path)
    a = vol.array
    return np.rot90(a[a.shape[0] // 2]), vol.spacing[2] / vol.spacing[1]


def main(subject: str, aldm_ct: str, aldm_t2: str, p2p_ct: str, out: str) -> None:
    s = Path(subject)
    rows = [("T1w (input)", s / "mr.nii.gz", None), ("CT (truth)", s / "ct_on_mr.nii.gz", "ct"),
            ("ALDM sCT (3D)", aldm_ct, "ct"), ("pix2pix sCT (2D)", p2p_ct, "ct"),
            ("T2w (truth)", s / "mr_t2.nii.gz", None), ("ALDM T2w (3D)", aldm_t2, None)]
    fig, axes = plt.subplots(1, len(rows), figsize=(2.0 * len(rows), 2.4), dpi=90)
    for ax, (title, path, kind) in zip(axes, rows):
        img, aspect = sagittal(Path(path))
        lo, hi = (-200, 1500) if kind == "ct" else np.percentile(img[img > 0], [1, 99]) \
            if (img > 0).any() else (0, 1)
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, aspect=aspect)
        ax.set_title(title, fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    main(*sys.argv[1:6])
