"""A JSON-able description of a Volume for `medxlate info`."""

from __future__ import annotations

import numpy as np

from medxlate.io.volume import Volume


def summarize(vol: Volume) -> dict:
    """Shape, spacing, orientation, origin, direction, modality, range and percentiles."""
    data = vol.array
    finite = data[np.isfinite(data)]
    pcts = (1, 5, 50, 95, 99)
    values = np.percentile(finite, pcts) if finite.size else [float("nan")] * len(pcts)
    return {
        "shape": list(vol.shape),
        "spacing_mm": [round(s, 6) for s in vol.spacing],
        "orientation": vol.orientation,
        "origin_ras_mm": [round(o, 6) for o in vol.origin],
        "direction": [round(float(d), 6) for d in vol.direction.ravel()],
        "modality": vol.modality,
        "min": float(finite.min()) if finite.size else float("nan"),
        "max": float(finite.max()) if finite.size else float("nan"),
        "mean": float(finite.mean()) if finite.size else float("nan"),
        "percentiles": {f"p{p}": float(v) for p, v in zip(pcts, values)},
        "non_finite_voxels": int(data.size - finite.size),
        "source": vol.meta.get("source", ""),
        **_dicom_fields(vol.meta.get("dicom") or {}),
    }


def _dicom_fields(dicom: dict) -> dict:
    """Which DICOM series was read (when it came from DICOM)."""
    if not dicom:
        return {}
    return {"series_uid": dicom.get("SeriesInstanceUID", ""),
            "series_description": dicom.get("SeriesDescription", "")}
