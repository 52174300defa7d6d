"""Synthesis masks on heads of four contrasts: how much of the head they keep, how much air.

Heads are simulated from the real label maps of ../shared/data/synthseg-head-labels (1 mm,
256^3) with one intensity per label and contrast (:data:`TABLE`: T1w, T2w, PD, FLAIR-like
relative signals; skin, muscle/other tissue and cortical bone are dark on T2w and FLAIR), a
0.6 voxel Gaussian blur (partial volume) and Rician noise of ``--noise`` times the brightest
tissue. The reference head is every labelled voxel plus the air it encloses in 3D.

For each subject, contrast and mask (``old``: preprocess.mask.body_mask, ``new``:
preprocess.signal_mask.signal_mask) it prints one JSON object:

- ``kept``: fraction of the reference head inside the mask;
- ``air_ml``: volume of mask outside the reference (ml), ``shell_mm``: that volume divided
  by the reference's surface area (the mean thickness of an air shell), ``air_p99_mm`` and
  ``air_max_mm``: 99th percentile and largest distance of those voxels from the head;
- ``signal_lost`` (new only): the fraction of signal outside the mask that synthesis warns
  about; ``seconds``.

Run: ``python benchmarks/mask_contrasts.py [--subjects 01,05,11] [--noise 0.02]
[--labels DIR]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

LABELS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "synthseg-head-labels"
CONTRASTS = ("t1", "t2", "pd", "flair")
_WM = (2, 41, 7, 46, 16, 28, 60, 85, 530, 512)
_GM = (3, 42, 8, 47, 10, 11, 12, 13, 17, 18, 26, 49, 50, 51, 52, 53, 54, 58, 136, 137, 163,
       164, 25, 57)
_CSF = (4, 5, 14, 15, 24, 43, 44, 72)
_VESSELS = (30, 62, 502, 514)
#: Relative signal per label: (T1w, T2w, PD, FLAIR).
TABLE: dict[int, tuple[float, float, float, float]] = {
    **{k: (110, 50, 70, 80) for k in _WM}, **{k: (75, 75, 85, 100) for k in _GM},
    **{k: (20, 160, 100, 10) for k in _CSF}, **{k: (60, 15, 40, 20) for k in _VESSELS},
    506: (20, 150, 95, 15),   # eyes (vitreous: CSF-like)
    507: (70, 22, 60, 30),    # other tissues (mostly muscle: dark on T2w)
    508: (50, 18, 60, 25),    # rectus muscles
    509: (45, 110, 80, 60),   # mucosa
    511: (60, 16, 55, 25),    # skin
    515: (4, 3, 5, 3),        # cortical bone
    516: (70, 45, 50, 50),    # cancellous bone (marrow)
}


def simulate(labels: np.ndarray, contrast: str, noise: float, seed: int) -> np.ndarray:
    """One image of ``contrast`` from a label map (relative units, Rician noise)."""
    column = CONTRASTS.index(contrast)
    lut = np.zeros(int(labels.max()) + 1, np.float32)
    for label, signals in TABLE.items():
        if label < lut.size:
            lut[label] = signals[column]
    image = ndimage.gaussian_filter(lut[labels], 0.6)
    sigma = noise * float(lut.max())
    rng = np.random.default_rng(seed)
    real = image + rng.normal(0.0, sigma, image.shape)
    imag = rng.normal(0.0, sigma, image.shape)
    return np.sqrt(real ** 2 + imag ** 2).astype(np.float32)


def reference_head(labels: np.ndarray) -> np.ndarray:
    return ndimage.binary_fill_holes(labels > 0)


def measure(mask: np.ndarray, head: np.ndarray, spacing) -> dict[str, float]:
    from medxlate.preprocess.mask import outside_distance

    voxel_ml = float(np.prod(spacing)) / 1000.0
    air = mask & ~head
    surface = head & ~ndimage.binary_erosion(head)
    area_mm2 = float(surface.sum()) * float(np.prod(spacing)) ** (2 / 3)
    dist = outside_distance(head, spacing)[air]
    return {"kept": round(float((mask & head).sum() / head.sum()), 5),
            "air_ml": round(float(air.sum()) * voxel_ml, 1),
            "shell_mm": round(float(air.sum()) * float(np.prod(spacing)) / area_mm2, 3),
            "air_p99_mm": round(float(np.percentile(dist, 99)) if dist.size else 0.0, 2),
            "air_max_mm": round(float(dist.max()) if dist.size else 0.0, 2)}


def main() -> None:
    import nibabel as nib

    from medxlate.io.volume import Volume
    from medxlate.preprocess.mask import body_mask
    from medxlate.preprocess.signal_mask import signal_mask

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", default="01,05,11")
    parser.add_argument("--noise", type=float, default=0.02)
    parser.add_argument("--contrasts", default=",".join(CONTRASTS))
    parser.add_argument("--labels", type=Path, default=LABELS,
                        help="folder of training_seg_NN.nii.gz (default ../shared/data/...)")
    args = parser.parse_args()
    if not args.labels.is_dir():
        raise SystemExit(f"{args.labels} is absent: the label maps are needed (--labels)")
    for sid in args.subjects.split(","):
        image = nib.load(args.labels / f"training_seg_{sid}.nii.gz")
        labels = np.asarray(image.dataobj).astype(np.int32)
        spacing = tuple(float(z) for z in image.header.get_zooms()[:3])
        head = reference_head(labels)
        for n, contrast in enumerate(args.contrasts.split(",")):
            vol = Volume(simulate(labels, contrast, args.noise, seed=n), image.affine, "MR")
            t0 = time.perf_counter()
            old = body_mask(vol, "MR")
            t_old = time.perf_counter() - t0
            t0 = time.perf_counter()
            new = signal_mask(vol)
            t_new = time.perf_counter() - t0
            for name, mask, seconds, extra in (
                    ("old", old, t_old, {}),
                    ("new", new.mask, t_new, {"signal_lost": round(new.signal_lost, 5)})):
                print(json.dumps({"figure": "mask_contrasts", "subject": sid,
                                  "contrast": contrast, "noise": args.noise, "mask": name,
                                  **measure(mask, head, spacing), **extra,
                                  "seconds": round(seconds, 1)}), flush=True)


if __name__ == "__main__":
    main()
