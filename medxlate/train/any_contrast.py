"""``augment.profile=any-contrast``: the MR source of each training sample drawn anew from
its tissue labels (:mod:`medxlate.phantom.any_contrast`), the CT target left exact.

The dataset's shards must hold ``labels`` (preprocess carries a cohort's labels.nii.gz into
them). A sample's labels come as a taller stack than its MR context (``extra_context``
slices more on each side) so that a thick-slice acquisition along the slice axis mixes the
right neighbours; the drawn image is normalised as preprocess normalises MR (the dataset's
spec, percentiles or z-score inside the body of the stack).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from medxlate.errors import UsageError

PROFILES = ("none", "any-contrast")


def check_profile(options: dict[str, Any]) -> None:
    """UsageError for an unknown profile or impossible ranges."""
    profile = options.get("profile", "none")
    if profile not in PROFILES:
        raise UsageError(f"augment.profile={profile!r}: choose from {', '.join(PROFILES)}")
    def number(key: str, value) -> float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UsageError(f"augment.{key}={value!r}: expected a number") from None

    slab = options.get("ac_slice_mm", (1.0, 6.0))
    if not isinstance(slab, list | tuple) or len(slab) != 2:
        raise UsageError(f"augment.ac_slice_mm={slab!r}: expected [min, max] in mm")
    low, high = (number("ac_slice_mm", v) for v in slab)
    if not 0 < low <= high:
        raise UsageError(f"augment.ac_slice_mm={[low, high]}: need 0 < min <= max")
    for key in ("ac_bias", "ac_noise", "ac_gamma", "ac_spread"):
        if number(key, options.get(key, 0.0)) < 0:
            raise UsageError(f"augment.{key} must be >= 0")
    if not 0.0 <= number("ac_p", options.get("ac_p", 1.0)) <= 1.0:
        raise UsageError(f"augment.ac_p={options.get('ac_p')!r}: a probability in [0, 1]")


def enabled(options: dict[str, Any] | None) -> bool:
    return bool(options) and options.get("profile", "none") == "any-contrast"


def redraw(options: dict[str, Any], seed: int) -> bool:
    """Whether a sample's MR is drawn anew (probability ``augment.ac_p``, default 1), from
    its own random stream so that every other draw of the sample stays as it was."""
    p = float(options.get("ac_p", 1.0))
    return p >= 1.0 or (p > 0.0 and np.random.default_rng([seed, 3]).random() < p)


def extra_context(options: dict[str, Any], slice_mm: float) -> int:
    """Label slices needed beyond the MR context on each side: a slab of the thickest
    slices, interpolated between two of them, reaches 1.5 thicknesses."""
    thickest = float(options.get("ac_slice_mm", (1.0, 6.0))[1])
    return max(1, math.ceil(1.5 * thickest / float(slice_mm)))


def draw_mr(labels: np.ndarray, context: int, spacing, spec: dict, seed: int,
            options: dict[str, Any]) -> np.ndarray:
    """The normalised MR stack (2 * context + 1, H, W) for a label stack centred on the
    same slice (its first axis the slice axis, ``spacing`` in that axis order)."""
    from medxlate.phantom.any_contrast import ContrastRanges, random_contrast
    from medxlate.intensity import mr_params, normalise_mr

    labels = np.asarray(labels).astype(np.int16, copy=False)
    centre = labels.shape[0] // 2
    keep = (centre - context, centre + context + 1)
    rng = np.random.default_rng([seed, 2])  # its own stream: other draws stay as they were
    img = random_contrast(labels, spacing, rng, ContrastRanges.from_options(options),
                          keep=keep)
    body = labels[keep[0]:keep[1]] > 0
    if not body.any():
        return np.full(img.shape, float(normalise_mr(np.zeros(1), spec, {"low": 0.0,
                                                                          "high": 1.0,
                                                                          "mean": 0.0,
                                                                          "std": 1.0})[0]),
                       np.float32)
    params = mr_params(img, spec, body)
    return normalise_mr(img, spec, params, body)
