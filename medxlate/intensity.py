"""Intensity normalisation to network space and back, as docs/dataset-format.md defines it.

A normalisation *spec* is the ``normalisation`` block of dataset.json (copied verbatim into
checkpoints)::

    {"ct": {"kind": "window", "low": -1024.0, "high": 3000.0},
     "mr": {"kind": "percentile", "low_pct": 0.5, "high_pct": 99.5}}   # or {"kind": "zscore"}

Functions accept either that whole block or one modality's entry. Per-subject values (MR
percentiles or mean/std) are returned as a small dict that dataset.json stores as ``mr_norm``.

Example:
    >>> spec = {"ct": {"kind": "window", "low": -1024.0, "high": 3000.0}}
    >>> float(normalise_ct(np.array([-1024.0, 3000.0]), spec)[1])
    1.0
    >>> float(denormalise_ct(np.array(-1.0), spec))
    -1024.0
"""

from __future__ import annotations

import numpy as np

DEFAULT_NORMALISATION: dict[str, dict] = {
    "ct": {"kind": "window", "low": -1024.0, "high": 3000.0},
    "mr": {"kind": "percentile", "low_pct": 0.5, "high_pct": 99.5},
}

KINDS = {"ct": ("window",), "mr": ("percentile", "zscore")}


def modality_spec(spec: dict, modality: str) -> dict:
    """The entry of ``spec`` for ``modality`` ("CT"/"MR"), or ``spec`` itself if it is one."""
    key = modality.lower()
    entry = spec if "kind" in spec else spec.get(key)
    if not isinstance(entry, dict) or "kind" not in entry:
        raise ValueError(f"normalisation spec has no entry for {modality}: {spec}")
    if entry["kind"] not in KINDS.get(key, ()):
        raise ValueError(f"normalisation kind {entry['kind']!r} is not valid for {modality} "
                         f"(valid: {', '.join(KINDS.get(key, ()))})")
    return entry


def _window(v: np.ndarray, low: float, high: float) -> np.ndarray:
    if not high > low:
        raise ValueError(f"normalisation window needs high > low, got [{low}, {high}]")
    v = np.clip(np.asarray(v, dtype=np.float64), low, high)
    # float64 then a final clip: rounding must never push a value past +-1.
    return np.clip(2.0 * (v - low) / (high - low) - 1.0, -1.0, 1.0).astype(np.float32)


def _unwindow(x: np.ndarray, low: float, high: float) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return ((x + 1.0) / 2.0 * (high - low) + low).astype(np.float32)


def normalise_ct(hu: np.ndarray, spec: dict) -> np.ndarray:
    """HU -> [-1, 1]: ``2 * (clip(hu, low, high) - low) / (high - low) - 1``."""
    s = modality_spec(spec, "CT")
    return _window(hu, float(s["low"]), float(s["high"]))


def denormalise_ct(x: np.ndarray, spec: dict) -> np.ndarray:
    """[-1, 1] -> HU: ``(x + 1) / 2 * (high - low) + low`` (float32)."""
    s = modality_spec(spec, "CT")
    return _unwindow(x, float(s["low"]), float(s["high"]))


def mr_params(v: np.ndarray, spec: dict, mask: np.ndarray | None = None) -> dict[str, float]:
    """Per-subject MR values: ``{"low", "high"}`` percentiles or ``{"mean", "std"}``.

    Computed over the voxels inside ``mask`` (the whole array when None).
    """
    s = modality_spec(spec, "MR")
    values = np.asarray(v, dtype=np.float32)
    values = values[mask.astype(bool)] if mask is not None else values.ravel()
    if values.size == 0:
        raise ValueError("MR normalisation needs at least one voxel inside the mask")
    if s["kind"] == "percentile":
        low, high = np.percentile(values, [float(s["low_pct"]), float(s["high_pct"])])
        if not high > low:
            high = low + 1.0  # a constant image maps to -1 instead of dividing by zero
        return {"low": float(low), "high": float(high)}
    mean, std = float(values.mean()), float(values.std())
    return {"mean": mean, "std": std if std > 0 else 1.0}


def normalise_mr(v: np.ndarray, spec: dict, params: dict,
                 mask: np.ndarray | None = None) -> np.ndarray:
    """MR -> network space with per-subject ``params`` from :func:`mr_params`.

    Percentile: window to [-1, 1]. Z-score: ``(v - mean) / std`` inside ``mask``, 0 outside.
    """
    s = modality_spec(spec, "MR")
    if s["kind"] == "percentile":
        return _window(v, params["low"], params["high"])
    x = (np.asarray(v, dtype=np.float32) - params["mean"]) / params["std"]
    if mask is not None:
        x = np.where(mask.astype(bool), x, 0.0)
    return x.astype(np.float32)


def denormalise_mr(x: np.ndarray, spec: dict, params: dict) -> np.ndarray:
    """Network space -> MR units of the subject the ``params`` came from."""
    s = modality_spec(spec, "MR")
    if s["kind"] == "percentile":
        return _unwindow(x, params["low"], params["high"])
    return (np.asarray(x, dtype=np.float32) * params["std"] + params["mean"]).astype(np.float32)


def normalise(array: np.ndarray, modality: str, spec: dict,
              mask: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, float]]:
    """Normalise one image; returns ``(x, per_subject_params)`` (``{}`` for CT windows)."""
    if modality.upper() == "CT":
        return normalise_ct(array, spec), {}
    params = mr_params(array, spec, mask)
    return normalise_mr(array, spec, params, mask), params


def denormalise(x: np.ndarray, modality: str, spec: dict,
                params: dict | None = None) -> np.ndarray:
    """Inverse of :func:`normalise` (z-scored background comes back as the mean)."""
    if modality.upper() == "CT":
        return denormalise_ct(x, spec)
    return denormalise_mr(x, spec, params or {})
