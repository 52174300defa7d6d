"""Dose figures as SynthRAD reports them: MAE, gamma pass rates, DVH points, proton range.

Every difference is synthetic minus reference; dose differences are in % of the prescription.

Example:
    >>> import numpy as np
    >>> ref = np.full((4, 4, 4), 60.0); pred = ref + 0.6; body = np.ones(ref.shape, bool)
    >>> round(dose_differences(pred, ref, body, body, 60.0)["dose_mae_body"], 6)
    1.0
    >>> [round(float(v), 6) for v in dvh_points(np.arange(101.0), np.ones(101, bool))]
    [2.0, 5.0, 98.0, 50.0]
    >>> round(r80(np.array([0, 50, 100, 100, 60, 0.0]), 1.0), 3)   # 80 between 100 and 60
    3.5
"""

from __future__ import annotations

import math

import numpy as np

#: Gamma criteria (dose %, distance mm) and the low-dose cut-off (% of the prescription).
GAMMA_CRITERIA = ((2.0, 2.0), (1.0, 1.0))
GAMMA_CUTOFF_PERCENT = 10.0
HIGH_DOSE_FRACTION = 0.9


def dose_differences(pred, ref, body, target, rx: float) -> dict[str, float]:
    """MAE in the body and in the high-dose region (ref > 90 % Rx), % of Rx."""
    diff = np.abs(pred - ref) / rx * 100.0
    high = body & (ref > HIGH_DOSE_FRACTION * rx)
    return {"dose_mae_body": float(diff[body].mean()),
            "dose_mae_high": float(diff[high].mean()) if high.any() else math.nan}


def dvh_points(dose: np.ndarray, target: np.ndarray) -> tuple[float, float, float, float]:
    """(D98, D95, D2, mean) of the target: D_x = the least dose of the hottest x % of it."""
    values = dose[target]
    d98, d95, d2 = np.percentile(values, [2.0, 5.0, 98.0])
    return float(d98), float(d95), float(d2), float(values.mean())


def gamma_pass_rates(pred, ref, spacing_mm, rx: float, body: np.ndarray) -> dict[str, float]:
    """Global gamma pass rates (%) with pymedphys: dose criterion in % of the prescription,
    reference points above 10 % of it (and inside the body) evaluated."""
    import pymedphys

    axes = tuple(np.arange(n) * s for n, s in zip(ref.shape, spacing_mm))
    ref_in = np.where(body, ref, 0.0)
    out = {}
    for dd, dta in GAMMA_CRITERIA:
        gamma = pymedphys.gamma(axes, ref_in, axes, pred, dd, dta,
                                lower_percent_dose_cutoff=GAMMA_CUTOFF_PERCENT,
                                global_normalisation=rx, interp_fraction=5, max_gamma=1.1,
                                skip_once_passed=True, interp_algo="scipy")
        valid = np.isfinite(gamma)
        rate = 100.0 * float((gamma[valid] <= 1).mean()) if valid.any() else math.nan
        out[f"gamma_{dd:g}_{dta:g}".replace(".", "p")] = rate
    return out


def r80(profile: np.ndarray, step_mm: float) -> float:
    """Distal R80: depth (mm from the profile's start) beyond which the dose stays below 80 %
    of its maximum (linear between samples); NaN when the profile ends above it.

    The last crossing, not the first after the maximum: an optimised spread-out Bragg peak
    has ripples that dip below 80 % of a hot spot inside the target.
    """
    level = 0.8 * float(np.max(profile))
    above = np.nonzero(profile >= level)[0]
    if level <= 0 or above[-1] + 1 >= profile.size:
        return math.nan
    k = int(above[-1])
    a, b = float(profile[k]), float(profile[k + 1])
    return (k + (a - level) / (a - b)) * step_mm


def range_shifts(pred_beams, ref_beams, grid, iso_lps, dirs_lps, step_mm: float = 0.25):
    """R80 shift (mm, synthetic - reference) of each beam's dose along its central axis.

    Negative: the synthetic CT stops the beam earlier (it is denser on the path).
    """
    from scipy import ndimage

    from medxlate.evaluate.dose.grid import lps_to_ras_index

    reach = float(np.linalg.norm(np.asarray(grid.shape) * np.asarray(grid.spacing)))
    t = np.arange(-reach, reach, step_mm)
    shifts = []
    for pred, ref, direction in zip(pred_beams, ref_beams, dirs_lps):
        points = np.asarray(iso_lps)[None, :] + t[:, None] * np.asarray(direction)[None, :]
        idx = lps_to_ras_index(grid, points).T
        values = [ndimage.map_coordinates(d, idx, order=1, mode="constant", cval=0.0)
                  for d in (pred, ref)]
        shifts.append(r80(values[0], step_mm) - r80(values[1], step_mm))
    return shifts


def dose_metrics(pred, ref, pred_beams, ref_beams, body, target, rx: float, grid, mode: str,
                 iso_lps=None, dirs_lps=None) -> tuple[dict[str, float], dict]:
    """(metrics for the report, details) of one subject."""
    metrics = dose_differences(pred, ref, body, target, rx)
    metrics.update(gamma_pass_rates(pred, ref, grid.spacing, rx, body))
    p, r = dvh_points(pred, target), dvh_points(ref, target)
    for name, a, b in zip(("d98", "d95", "d2", "mean"), p, r):
        metrics[f"target_{name}_diff"] = (a - b) / rx * 100.0
    details = {"target_dvh_gy": {"reference": dict(zip(("d98", "d95", "d2", "mean"), r)),
                                 "synthetic": dict(zip(("d98", "d95", "d2", "mean"), p))}}
    if mode == "proton":
        shifts = range_shifts(pred_beams, ref_beams, grid, iso_lps, dirs_lps)
        for k, s in enumerate(shifts, start=1):
            metrics[f"range_shift_beam_{k}"] = s
        finite = [s for s in shifts if math.isfinite(s)]
        metrics["range_shift_abs_max"] = max(abs(s) for s in finite) if finite else math.nan
    return metrics, details
