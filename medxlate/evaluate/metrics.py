"""Image metrics of a synthetic image against its reference inside a mask.

Definitions follow SynthRAD2023 (MAE, PSNR, SSIM) and SynthRAD2025 (MS-SSIM) exactly; the
wording that goes into every report is in :mod:`medxlate.evaluate.definitions`.

Example:
    >>> import numpy as np
    >>> ref = np.full((8, 8, 8), 40.0, np.float32); mask = np.ones(ref.shape, bool)
    >>> m = point_metrics(ref + 10, ref, mask, MetricConfig())
    >>> m["mae"], m["me"]
    (10.0, 10.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medxlate.errors import InputError

#: Tissue classes of the reference CT for per-tissue MAE (:func:`tissue_masks`).
TISSUES = ("air", "soft_tissue", "bone")


@dataclass
class MetricConfig:
    """What to compute and with which constants.

    Attributes:
        low, high: clip range for PSNR/SSIM/MS-SSIM (data range ``high - low``); also the
            fill value outside the mask. SynthRAD2023: [-1024, 3000]; SynthRAD2025:
            [-1024, 3071]. For normalised MR the range of the normalised intensities.
        tissue_thresholds: (air/soft, soft/bone) HU thresholds on the reference CT, or None
            for no per-tissue MAE (synthetic MR).
        device: torch device for SSIM and MS-SSIM (None: CUDA when present, else CPU).
    """

    low: float = -1024.0
    high: float = 3000.0
    tissue_thresholds: tuple[float, float] | None = (-400.0, 250.0)
    device: str | None = None

    @property
    def data_range(self) -> float:
        return self.high - self.low


def tissue_masks(ref_hu: np.ndarray, thresholds: tuple[float, float]) -> dict[str, np.ndarray]:
    """Air: ref < t1; soft tissue: t1 <= ref <= t2; bone: ref > t2 (HU of the reference CT)."""
    t1, t2 = thresholds
    if not t1 < t2:
        raise InputError(f"tissue thresholds must increase, got {t1} and {t2}")
    return {"air": ref_hu < t1, "soft_tissue": (ref_hu >= t1) & (ref_hu <= t2),
            "bone": ref_hu > t2}


def _mean_or_nan(values: np.ndarray) -> float:
    return float(values.mean(dtype=np.float64)) if values.size else float("nan")


def point_metrics(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray, config: MetricConfig,
                  labels: np.ndarray | None = None) -> dict[str, float]:
    """MAE, ME, PSNR, NMSE, per-tissue and per-label MAE (everything but the window metrics).

    MAE = sum|ref m - pred m| / sum m and ME = sum(pred m - ref m) / sum m on unclipped
    values; PSNR = 10 log10(R^2 / MSE) on values clipped to [low, high], mask voxels only;
    NMSE = ||pred - ref||^2 / ||ref||^2 over the mask.
    """
    m = np.asarray(mask, dtype=bool)
    n = int(m.sum())
    if n == 0:
        raise InputError("the mask is empty: no voxel to evaluate")
    p = pred[m].astype(np.float64)
    r = ref[m].astype(np.float64)
    diff = p - r
    out = {"mae": float(np.abs(diff).sum() / n), "me": float(diff.sum() / n)}
    pc, rc = np.clip(p, config.low, config.high), np.clip(r, config.low, config.high)
    mse = float(np.mean((pc - rc) ** 2, dtype=np.float64))
    out["psnr"] = float(10 * np.log10(config.data_range ** 2 / mse)) if mse > 0 else float("inf")
    ref_energy = float(np.sum(r * r))
    out["nmse"] = float(np.sum(diff * diff) / ref_energy) if ref_energy > 0 else float("nan")
    if config.tissue_thresholds is not None:
        for name, inside in tissue_masks(r, config.tissue_thresholds).items():
            out[f"mae_{name}"] = _mean_or_nan(np.abs(diff[inside]))
    if labels is not None:
        lab = np.rint(labels[m]).astype(np.int64)
        for value in np.unique(lab):
            if value == 0:
                continue
            out[f"mae_label_{int(value)}"] = _mean_or_nan(np.abs(diff[lab == value]))
    return out


def image_metrics(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray, config: MetricConfig,
                  labels: np.ndarray | None = None) -> tuple[dict[str, float], dict]:
    """All metrics of one pair, in report order, and details (MS-SSIM per-scale means).

    Args:
        pred: synthetic image (X, Y, Z), HU for CT.
        ref: reference image, same grid.
        mask: bool body mask on the same grid.
        config: ranges and thresholds.
        labels: optional integer label map (0 = background) for per-label MAE.

    Raises:
        InputError: shapes differ, the mask is empty, or an axis is shorter than 7 voxels.
    """
    from medxlate.evaluate.ssim import ms_ssim_masked, ssim_masked

    for name, arr in (("prediction", pred), ("mask", mask), ("labels", labels)):
        if arr is not None and arr.shape != ref.shape:
            raise InputError(f"{name} shape {arr.shape} differs from the reference {ref.shape}")
    mask = np.asarray(mask, dtype=bool)
    point = point_metrics(pred, ref, mask, config, labels)
    out = {k: point[k] for k in ("mae", "me", "psnr")}
    out["ssim"] = ssim_masked(pred, ref, mask, config.low, config.high, config.device)
    out["ms_ssim"], scales = ms_ssim_masked(pred, ref, mask, config.low, config.high,
                                            config.device)
    out.update({k: v for k, v in point.items() if k not in out})
    return out, {"ms_ssim_scales": scales}
