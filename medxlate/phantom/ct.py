"""CT physics of the phantoms: tissue HU per subject, scanner blur and correlated noise."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medxlate.phantom.tissues import HU_SAMPLE_OVERRIDES, TISSUES

HU_MIN, HU_MAX = -1024.0, 3071.0


def sample_hu(region: str, rng: np.random.Generator) -> np.ndarray:
    """Per-label CT number of one subject, each drawn uniformly from its sampling range."""
    overrides = HU_SAMPLE_OVERRIDES.get(region, {})
    values = []
    for t in TISSUES:
        lo, hi = overrides.get(t.name, t.hu_sample)
        values.append(rng.uniform(lo, hi) if hi > lo else lo)
    return np.array(values, dtype=np.float32)


def sample_scanner(rng: np.random.Generator) -> dict:
    """Blur (Gaussian PSF sigma, mm) and noise (SD of the correlated noise, HU) of one scan."""
    return {"psf_sigma_mm": float(rng.uniform(0.35, 0.7)),
            "noise_sd_hu": float(rng.uniform(5.0, 20.0)),
            "noise_correlation_voxels": float(rng.uniform(0.5, 1.0))}


def acquire(hu: np.ndarray, spacing, scanner: dict, rng: np.random.Generator) -> np.ndarray:
    """Blur a partial-volume HU image with the scanner PSF and add correlated noise.

    Noise is white Gaussian smoothed in-plane (CT noise texture after filtered back
    projection is correlated over about a voxel) and rescaled to ``noise_sd_hu``. The
    result is rounded to integer HU and clipped to the 12-bit CT range [-1024, 3071].
    """
    sigma = [scanner["psf_sigma_mm"] / s for s in spacing]
    out = ndimage.gaussian_filter(hu, sigma, mode="nearest")
    c = scanner["noise_correlation_voxels"]
    noise = ndimage.gaussian_filter(rng.standard_normal(hu.shape, dtype=np.float32), (c, c, 0))
    noise *= np.float32(scanner["noise_sd_hu"] / max(float(noise.std()), 1e-6))
    out += noise
    return np.rint(np.clip(out, HU_MIN, HU_MAX)).astype(np.float32)
