"""MR physics of the phantoms: signal equations, sequence parameters, bias field, Rician noise.

Signals are computed per tissue from (PD, T1, T2, T2*) and mixed by partial volume on the
canvas (the magnetisation of a voxel is the sum of its tissues'). Then a smooth
multiplicative receive-bias field, complex Gaussian noise (magnitude -> Rician) and a
receiver gain to arbitrary integer scanner units are applied.
"""

from __future__ import annotations

import numpy as np

from medxlate.phantom.fields import WaveField, on_grid
from medxlate.phantom.tissues import TISSUES, relaxation


def spoiled_gre(pd, t1, t2star, tr, te, flip_deg):
    """Steady-state spoiled gradient echo (FLASH) signal.

    S = PD sin(a) (1 - E1) / (1 - cos(a) E1) exp(-TE / T2*), E1 = exp(-TR / T1)
    (Ernst & Anderson 1966; Haacke et al. 1999, "Magnetic Resonance Imaging", chapter 18).
    """
    alpha = np.deg2rad(flip_deg)
    e1 = np.exp(-tr / np.asarray(t1, float))
    return (np.asarray(pd, float) * np.sin(alpha) * (1 - e1) / (1 - np.cos(alpha) * e1)
            * np.exp(-te / np.asarray(t2star, float)))


def spin_echo(pd, t1, t2, tr, te):
    """Spin echo signal with 90-180 pulses and finite echo time.

    S = PD (1 - 2 exp(-(TR - TE/2) / T1) + exp(-TR / T1)) exp(-TE / T2)
    (Haacke et al. 1999, chapter 8).
    """
    t1 = np.asarray(t1, float)
    recovery = 1 - 2 * np.exp(-(tr - te / 2) / t1) + np.exp(-tr / t1)
    return np.asarray(pd, float) * recovery * np.exp(-te / np.asarray(t2, float))


def sample_protocol(rng: np.random.Generator) -> dict:
    """A scanner and protocol for one subject (a multi-centre cohort varies all of them)."""
    return {
        "field_strength_t": float(rng.choice([1.5, 3.0])),
        "t1w": {"sequence": "3D spoiled gradient echo", "tr_ms": float(rng.uniform(8, 20)),
                "te_ms": float(rng.uniform(2.3, 4.5)), "flip_deg": float(rng.uniform(18, 30))},
        "t2w": {"sequence": "spin echo", "tr_ms": float(rng.uniform(2500, 5000)),
                "te_ms": float(rng.uniform(80, 120))},
        "tissue_variation": float(rng.uniform(0.02, 0.05)),
    }


def tissue_signals(protocol: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-label noiseless signal of each contrast ('t1w', 't2w'), relative units.

    Each tissue's PD, T1 and T2 vary per subject by a few per cent (``tissue_variation``).
    """
    field = protocol["field_strength_t"]
    cv = protocol["tissue_variation"]
    n = len(TISSUES)
    pd = np.array([t.pd for t in TISSUES]) * rng.normal(1, cv, n).clip(0.8, 1.2)
    t1 = np.array([relaxation(t, field)[0] for t in TISSUES]) * rng.normal(1, cv, n).clip(0.8, 1.2)
    t2 = np.array([relaxation(t, field)[1] for t in TISSUES]) * rng.normal(1, cv, n).clip(0.8, 1.2)
    t2star = np.array([t.t2star for t in TISSUES]) * (3.0 / field) ** 0.5
    s1 = protocol["t1w"]
    s2 = protocol["t2w"]
    return {
        "t1w": spoiled_gre(pd, t1, t2star, s1["tr_ms"], s1["te_ms"], s1["flip_deg"]),
        "t2w": spin_echo(pd, t1, t2, s2["tr_ms"], s2["te_ms"]),
    }


def acquire(signal: np.ndarray, index_to_scanner: np.ndarray, reference: float,
            rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Apply receive bias, Rician noise and receiver gain to a noiseless signal image.

    Args:
        signal: noiseless magnetisation image (relative units).
        index_to_scanner: 4x4 voxel index -> MR scanner world mm (the coil frame of the bias).
        reference: signal of the brightest tissue expected in the field of view.
        rng: random generator.

    Returns:
        (image in arbitrary integer units as float32, acquisition record for truth.json)
    """
    bias_rms = float(rng.uniform(0.06, 0.15))
    field = WaveField.random(rng, 6, (180.0, 450.0), bias_rms)
    bias = np.exp(on_grid(field, signal.shape, index_to_scanner, step=8.0))
    noise_fraction = float(rng.uniform(0.01, 0.03))
    sigma = np.float32(noise_fraction * reference)
    real = signal * bias
    real += rng.standard_normal(signal.shape, dtype=np.float32) * sigma
    imag = rng.standard_normal(signal.shape, dtype=np.float32) * sigma
    magnitude = np.sqrt(real * real + imag * imag)
    gain = float(rng.uniform(1000, 3500)) / reference
    image = np.rint(np.clip(magnitude * np.float32(gain), 0, 32767)).astype(np.float32)
    record = {"bias_field_rms_log": bias_rms,
              "bias_field_range": [float(bias.min()), float(bias.max())],
              "noise_sigma": float(sigma * gain), "noise_fraction_of_reference": noise_fraction,
              "gain": gain}
    return image, record
