"""MR of a real-anatomy phantom: per-class signals, painted on the map's grid, then acquired.

Two modes:

- ``realistic``: T1w, T2w, PDw or FLAIR from each class's proton density and T1/T2 at 1.5 T
  or 3 T (:data:`~medxlate.phantom.labels.CLASSES`), through the spin-echo, spoiled
  gradient-echo or inversion-recovery signal equation, with TR/TE/TI/flip drawn from clinical
  ranges per subject.
- ``random``: a random mean and spread per class, as SynthSeg draws them (Billot et al. 2023),
  so that a model sees every contrast.

Both then get the acquired resolution (Gaussian blur along each axis of the map's grid, nearly
parallel to the MR grid's, a thick slice for 2D protocols), the receive bias field, Rician
noise and a receiver gain
(:func:`medxlate.phantom.mr.acquire`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medxlate.phantom.labels import CLASS_BY_NAME, CLASSES, N_CLASSES
from medxlate.phantom.mr import spin_echo, spoiled_gre

MODES = ("realistic", "random")
CONTRASTS = ("t1w", "t2w", "pdw", "flair")


def inversion_recovery(pd, t1, t2, tr, ti, te):
    """Magnitude inversion-recovery signal (180-TI-90, readout at TE, TE << TR).

    S = PD |1 - 2 exp(-TI / T1) + exp(-TR / T1)| exp(-TE / T2)
    (Bernstein, King & Zhou 2004, "Handbook of MRI Pulse Sequences", section 14.2).
    """
    t1 = np.asarray(t1, float)
    mz = 1 - 2 * np.exp(-ti / t1) + np.exp(-tr / t1)
    return np.asarray(pd, float) * np.abs(mz) * np.exp(-te / np.asarray(t2, float))


def flair_ti(t1_csf: float, tr: float) -> float:
    """Inversion time that nulls CSF: 1 - 2 exp(-TI/T1) + exp(-TR/T1) = 0."""
    return float(t1_csf * np.log(2 / (1 + np.exp(-tr / t1_csf))))


def sample_protocol(contrast: str, rng: np.random.Generator) -> dict:
    """Field strength, sequence and timing (ms) of one realistic acquisition."""
    field = float(rng.choice([1.5, 3.0]))
    if contrast == "t1w":
        kind = str(rng.choice(["spin echo", "spoiled gradient echo", "inversion recovery"]))
        if kind == "spin echo":
            p = {"tr_ms": rng.uniform(400, 700), "te_ms": rng.uniform(8, 20)}
        elif kind == "spoiled gradient echo":
            p = {"tr_ms": rng.uniform(8, 25), "te_ms": rng.uniform(2, 5),
                 "flip_deg": rng.uniform(15, 35)}
        else:  # MPRAGE-like: recovery time TR, inversion time TI, short gradient-echo TE
            p = {"tr_ms": rng.uniform(1800, 2500), "ti_ms": rng.uniform(800, 1100),
                 "te_ms": rng.uniform(2.5, 4.5)}
    elif contrast == "t2w":
        kind, p = "spin echo", {"tr_ms": rng.uniform(2500, 6000), "te_ms": rng.uniform(80, 120)}
    elif contrast == "pdw":
        kind, p = "spin echo", {"tr_ms": rng.uniform(2000, 4000), "te_ms": rng.uniform(10, 30)}
    elif contrast == "flair":
        tr = rng.uniform(8000, 11000)
        t1_csf = relaxation(CLASS_BY_NAME["csf"], field)[0]
        kind, p = "inversion recovery", {"tr_ms": tr, "te_ms": rng.uniform(80, 140),
                                         "ti_ms": flair_ti(t1_csf, tr) * rng.uniform(0.97, 1.03)}
    else:
        raise ValueError(f"unknown contrast {contrast!r}")
    return {"field_strength_t": field, "sequence": kind,
            **{k: float(v) for k, v in p.items()}}


def relaxation(tissue, field_t: float) -> tuple[float, float, float]:
    """(T1, T2, T2*) in ms at 1.5 T or 3 T (nearest tabulated field)."""
    i = 0 if field_t < 2.25 else 1
    return tissue.t1[i], tissue.t2[i], tissue.t2star * (1.5 / field_t) ** 0.5


def class_signals(protocol: dict, rng: np.random.Generator, cv: float = 0.03) -> np.ndarray:
    """Noiseless signal per class; PD, T1, T2 of each class vary per subject by ``cv``."""
    b0 = protocol["field_strength_t"]
    jitter = lambda: rng.normal(1, cv, N_CLASSES).clip(0.85, 1.15)  # noqa: E731
    rel = np.array([relaxation(c, b0) for c in CLASSES])
    pd = np.array([c.pd for c in CLASSES]) * jitter()
    t1, t2, t2s = rel[:, 0] * jitter(), rel[:, 1] * jitter(), rel[:, 2]
    return signal(protocol, pd, t1, t2, t2s).astype(np.float32)


def signal(protocol: dict, pd, t1, t2, t2star) -> np.ndarray:
    """The protocol's signal equation applied to tissue parameters (arrays or scalars)."""
    p = protocol
    if p["sequence"] == "spin echo":
        return spin_echo(pd, t1, t2, p["tr_ms"], p["te_ms"])
    if p["sequence"] == "spoiled gradient echo":
        return spoiled_gre(pd, t1, t2star, p["tr_ms"], p["te_ms"], p["flip_deg"])
    if p["sequence"] == "inversion recovery":
        decay = t2star if p["te_ms"] < 10 else t2  # gradient-echo readout for MPRAGE-like
        return inversion_recovery(pd, t1, decay, p["tr_ms"], p["ti_ms"], p["te_ms"])
    raise ValueError(f"unknown sequence {p['sequence']!r}")


def random_contrast(rng: np.random.Generator) -> dict:
    """Random per-class mean in [0, 1] and spread in [0, 0.1] (background stays dark)."""
    mean = rng.uniform(0, 1, N_CLASSES)
    spread = rng.uniform(0, 0.1, N_CLASSES)
    for name in ("background", "air"):
        mean[CLASS_BY_NAME[name].id] = rng.uniform(0, 0.05) if name == "air" else 0.0
        spread[CLASS_BY_NAME[name].id] = 0.0
    return {"mean": mean.astype(np.float32), "spread": spread.astype(np.float32)}


def paint_mr(classes: np.ndarray, values: np.ndarray, images: dict, rng: np.random.Generator,
             spread: np.ndarray | None = None, texture_cv: float = 0.03) -> np.ndarray:
    """Noiseless MR image of a class map on its own grid.

    ``images`` are the subject's fields on the map grid
    (:func:`medxlate.phantom.label_ct.field_images`). ``soft_tissue`` mixes the fat and muscle
    values with the subject's fat fraction (the same as in the CT); a smooth texture
    modulates every tissue by ``texture_cv``; with
    ``spread`` (random mode) each voxel also gets Gaussian noise of that SD per class.
    """
    image = values.astype(np.float32)[classes]
    soft = classes == CLASS_BY_NAME["soft_tissue"].id
    if soft.any():
        f = images["fat"][soft]
        fat, muscle = values[CLASS_BY_NAME["fat"].id], values[CLASS_BY_NAME["muscle"].id]
        image[soft] = f * np.float32(fat) + (1 - f) * np.float32(muscle)
    image *= 1 + np.float32(texture_cv) * images["texture"]
    if spread is not None:
        image += spread.astype(np.float32)[classes] * rng.standard_normal(classes.shape,
                                                                          dtype=np.float32)
        np.maximum(image, 0, out=image)
    return image


def sample_resolution(rng: np.random.Generator) -> dict:
    """Acquired resolution (mm, x y z of the MR grid): 3D (1-1.3 mm isotropic) or 2D (in-plane
    0.8-1.2 mm, slice 2.5-6 mm along a random axis), each with probability 1/2."""
    if rng.random() < 0.5:
        r = float(rng.uniform(1.0, 1.3))
        return {"acquisition": "3D", "resolution_mm": [r, r, r]}
    inplane = float(rng.uniform(0.8, 1.2))
    res = [inplane] * 3
    axis = int(rng.integers(3))
    res[axis] = float(rng.uniform(2.5, 6.0))
    return {"acquisition": "2D", "resolution_mm": res, "slice_axis": axis}


def blur_sigma(source_spacing, resolution_mm, minimum: float = 0.5) -> list[float]:
    """Gaussian sigma (voxels of the source grid) that turns the source's resolution into
    ``resolution_mm`` (FWHM per axis; FWHM = 2.355 sigma), at least ``minimum`` voxel (the
    partial-volume mixing of a 1 mm map's tissue boundaries)."""
    return [max(minimum, float(np.sqrt(max(r * r - s * s, 0.0))) / 2.355 / s)
            for r, s in zip(resolution_mm, source_spacing)]


def smooth(image: np.ndarray, sigma) -> np.ndarray:
    """Gaussian blur in place of the acquisition's point spread (sigma in voxels)."""
    return ndimage.gaussian_filter(image, sigma, mode="nearest")
