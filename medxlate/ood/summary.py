"""The compact description of one input volume that the guard compares with training's.

Everything is measured on a coarse "guard grid" (4 mm isotropic, :data:`GUARD_SPACING_MM`),
so that a training record and a user's input are summarised the same way whatever the
model's own working grid, and the body mask costs milliseconds instead of seconds.

Example:
    >>> import numpy as np
    >>> from medxlate.io import Volume
    >>> a = np.zeros((40, 40, 40), np.float32); a[10:30, 10:30, 10:30] = 100.0
    >>> s = summarise(Volume(a, np.diag([2.0, 2.0, 2.0, 1.0]), "MR"), "MR")
    >>> round(s["body"]["volume_ml"], 1)
    64.0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medxlate.io.volume import Volume

GUARD_SPACING_MM = (4.0, 4.0, 4.0)
#: Quantile levels of the normalised intensities inside the body.
LEVELS = (0.02, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.98)
#: A CT's air (HU) and the level above which a CT voxel is bone.
AIR_HU = (-1100.0, -900.0)
BONE_HU = 300.0
#: Depth shells (mm from the body surface) of the intensity profile: which tissues are
#: bright at the skin, under it and deep inside tells contrasts apart (a T1w scalp is bright
#: fat, a T2w one dark; T2w CSF is bright under the skull) where global quantiles do not.
SHELLS_MM = (0.0, 8.0, 16.0, 32.0, 48.0, float("inf"))
#: Fewer voxels than this along an axis: not a volume the guard (or a 2.5D model) can judge.
MIN_SLICES = 3


def intensity_evidence(array: np.ndarray) -> dict[str, float]:
    """Facts about raw intensities that tell a CT from an MR (fractions of all voxels).

    A CT holds air near -1000 HU and a bone tail above +300 HU; an MR has no absolute scale
    and no negative values (magnitude images).
    """
    a = np.asarray(array, dtype=np.float32)
    n = max(a.size, 1)
    finite = a[np.isfinite(a)]
    return {
        "min": float(finite.min()) if finite.size else float("nan"),
        "max": float(finite.max()) if finite.size else float("nan"),
        "negative_fraction": float(np.count_nonzero(finite < 0) / n),
        "air_fraction": float(np.count_nonzero((finite >= AIR_HU[0]) & (finite <= AIR_HU[1]))
                              / n),
        "bone_fraction": float(np.count_nonzero(finite > BONE_HU) / n),
        "distinct_values": int(min(np.unique(finite[:: max(1, finite.size // 200000)]).size,
                                   1000)),
    }


def looks_like_ct(ev: dict[str, float]) -> bool:
    """Air near -1000 HU on at least 5 % of the voxels and a bone tail: a CT."""
    return ev["air_fraction"] >= 0.05 and ev["bone_fraction"] >= 0.001 and ev["min"] < -500


def body_size(mask: np.ndarray, spacing) -> dict[str, Any]:
    """Body volume (mL) and the extent (mm) of its bounding box along the three axes."""
    spacing = np.asarray(spacing, dtype=np.float64)
    if not mask.any():
        return {"volume_ml": 0.0, "extent_mm": [0.0, 0.0, 0.0]}
    idx = np.nonzero(mask)
    extent = [float((int(i.max()) - int(i.min()) + 1) * s) for i, s in zip(idx, spacing)]
    return {"volume_ml": float(mask.sum() * np.prod(spacing) / 1000.0), "extent_mm": extent}


def summarise(vol: Volume, src_mod: str, normalisation: dict | None = None) -> dict[str, Any]:
    """The guard's description of canonical ``vol`` read as ``src_mod`` ("MR"/"CT").

    Returns a JSON-able dict: ``shape``, ``spacing_mm``, ``intensity`` (see
    :func:`intensity_evidence`), and when the volume is 3D and not constant also ``body``
    (:func:`body_size` on the guard grid) and ``quantiles`` (of the body's intensities
    normalised with ``normalisation``, the checkpoint's, at :data:`LEVELS`) and ``profile``
    (their mean per depth shell, :func:`depth_profile`).
    """
    from medxlate.preprocess.mask import body_mask
    from medxlate.intensity import DEFAULT_NORMALISATION, normalise
    from medxlate.synth.grid import to_spacing

    out: dict[str, Any] = {"shape": [int(n) for n in vol.shape],
                           "spacing_mm": [round(float(s), 4) for s in vol.spacing],
                           "intensity": intensity_evidence(vol.array)}
    ev = out["intensity"]
    if min(vol.shape) < MIN_SLICES or not ev["max"] > ev["min"]:
        return out
    coarse = to_spacing(vol, [max(g, s) for g, s in zip(GUARD_SPACING_MM, vol.spacing)])
    try:
        mask = body_mask(coarse, modality=src_mod)
    except Exception:  # an image with no body at all: nothing to summarise
        return out
    out["body"] = body_size(mask, coarse.spacing)
    if mask.sum() < 8:
        return out
    x, _ = normalise(coarse.array, src_mod, normalisation or DEFAULT_NORMALISATION, mask=mask)
    out["quantiles"] = [round(float(q), 4) for q in np.quantile(x[mask], LEVELS)]
    out["profile"] = depth_profile(x, mask, coarse.spacing)
    return out


def depth_profile(x: np.ndarray, mask: np.ndarray, spacing) -> list[float | None]:
    """Mean of ``x`` in each depth shell of :data:`SHELLS_MM` inside ``mask`` (None: empty)."""
    from scipy import ndimage

    depth = ndimage.distance_transform_edt(mask, sampling=tuple(float(s) for s in spacing))
    out: list[float | None] = []
    for low, high in zip(SHELLS_MM[:-1], SHELLS_MM[1:]):
        shell = mask & (depth > low) & (depth <= high)
        out.append(round(float(x[shell].mean()), 4) if shell.any() else None)
    return out
