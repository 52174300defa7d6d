"""Straightforward numpy/scipy/scikit-image references for the evaluate tests.

These follow the published definitions literally (whole-volume float64 arrays, scipy filters,
scikit-image metrics) and share no code with medxlate.evaluate.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter
from scipy.signal import fftconvolve
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.util import crop

MS_WEIGHTS = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]


def masked_shifted(a, mask, low, high):
    a = np.clip(a.astype(np.float64), low, high)
    return np.where(mask, a, low) - low


def ref_ssim(pred, ref, mask, low=-1024.0, high=3000.0):
    """SynthRAD2023: skimage SSIM map (defaults, full=True), cropped by 3, masked mean."""
    x, y = masked_shifted(ref, mask, low, high), masked_shifted(pred, mask, low, high)
    _, full = structural_similarity(x, y, data_range=high - low, full=True)
    return float(crop(full, 3)[crop(mask, 3).astype(bool)].mean(dtype=np.float64)), full


def ref_psnr(pred, ref, mask, low=-1024.0, high=3000.0):
    r = np.clip(ref.astype(np.float64), low, high)[mask]
    p = np.clip(pred.astype(np.float64), low, high)[mask]
    return float(peak_signal_noise_ratio(r, p, data_range=high - low))


def ref_ms_ssim(pred, ref, mask, low=-1024.0, high=3000.0):
    """SynthRAD2025 masked MS-SSIM written out with uniform_filter and fftconvolve."""
    big_r = high - low
    x, y = masked_shifted(ref, mask, low, high), masked_shifted(pred, mask, low, high)
    m = mask.astype(np.float64)
    pads = []
    for n in x.shape:
        extra = max(97 - n, 0)
        pads.append((extra // 2, extra - extra // 2))
    x, y, m = (np.pad(a, pads, mode="edge") for a in (x, y, m))
    c1, c2 = (0.01 * big_r) ** 2, (0.03 * big_r) ** 2
    c3 = c2 / 2
    norm = 343 / 342
    means = []
    for w in MS_WEIGHTS:
        ux, uy = uniform_filter(x, 7), uniform_filter(y, 7)
        vx = norm * (uniform_filter(x * x, 7) - ux * ux)
        vy = norm * (uniform_filter(y * y, 7) - uy * uy)
        vxy = norm * (uniform_filter(x * y, 7) - ux * uy)
        sx, sy = np.sqrt(np.clip(vx, 0, None)), np.sqrt(np.clip(vy, 0, None))
        lum = np.clip((2 * ux * uy + c1) / (ux ** 2 + uy ** 2 + c1), 0, None)
        con = np.clip((2 * sx * sy + c2) / (vx + vy + c2), 0, None)
        struct = np.clip((vxy + c3) / (sx * sy + c3), 0, None)
        full = (lum * con * struct) ** w
        means.append(float(crop(full, 3)[crop(m, 3) > 0].mean()))
        box = np.ones((2, 2, 2)) / 8
        x = fftconvolve(x, box, mode="same")[::2, ::2, ::2]
        y = fftconvolve(y, box, mode="same")[::2, ::2, ::2]
        m = m[::2, ::2, ::2]
    return float(np.prod(np.clip(means, 0, 1))), means


def ct_like(shape, seed=0, noise=40.0, bias=0.0):
    """A phantom-like CT pair: an ellipsoid body with fat rim and bone ring in air, + noisy copy.

    Returns (pred, ref, body_mask).
    """
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r = np.sqrt((grids[0] / 0.8) ** 2 + (grids[1] / 0.6) ** 2 + (grids[2] / 1.3) ** 2)
    ref = np.where(r < 1.0, 40.0, -1000.0)
    ref = np.where((r > 0.9) & (r < 1.0), -100.0, ref)
    ref = np.where((r > 0.4) & (r < 0.5), 1200.0, ref)
    ref = (ref + rng.normal(0, 15, shape)).astype(np.float32)
    pred = (ref + bias + rng.normal(0, noise, shape)).astype(np.float32)
    return pred, ref, r < 1.0
