"""Anatomy figures of a synthetic CT (HU) against its reference: is bone where it should be?

Three numbers issue 29 asks of real-anatomy subjects (a synthetic CT, the reference CT, the
body mask and, for the brain, the label map's own labels, all on one grid):

- ``bone_dice_300``: Dice of {pred > 300 HU} and {ref > 300 HU}, both inside the mask;
- ``brain_over_300_pct``: % of the brain voxels (SynthSeg/FreeSurfer labels 2-60 of the map,
  ``labels_source.nii.gz``) where the prediction is > 300 HU (bone drawn inside the brain);
- ``air_mae``: mean |pred - ref| over the mask voxels where the reference is < -400 HU (the
  air inside the head: sinuses, airways, mouth).

A figure whose region is empty (no bone in either image, no brain label, no air) is NaN
(undefined), not 0 or 1.

Example:
    >>> import numpy as np
    >>> ref = np.array([-1000.0, 40, 1000, 1000]); pred = np.array([-500.0, 400, 900, 20])
    >>> mask = np.ones(4, bool); labels = np.array([0, 2, 0, 0])
    >>> anatomy_metrics(pred, ref, mask, labels)
    {'bone_dice_300': 0.5, 'brain_over_300_pct': 100.0, 'air_mae': 500.0}
"""

from __future__ import annotations

import numpy as np

from medxlate.errors import InputError

BONE_HU = 300.0          # the "> 300 HU" bone threshold of issue 29
AIR_HU = -400.0          # reference air: below this
BRAIN_LABELS = (2, 60)   # SynthSeg/FreeSurfer brain labels, inclusive
NAMES = ("bone_dice_300", "brain_over_300_pct", "air_mae")


def bone_dice(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray,
              threshold: float = BONE_HU) -> float:
    """Dice of the regions above ``threshold`` inside ``mask``; NaN when both are empty."""
    a, b = (pred > threshold) & mask, (ref > threshold) & mask
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int((a & b).sum()) / total if total else float("nan")


def brain_over_pct(pred: np.ndarray, labels: np.ndarray, threshold: float = BONE_HU,
                   brain: tuple[int, int] = BRAIN_LABELS) -> float:
    """% of the voxels whose label lies in ``brain`` (inclusive) where ``pred > threshold``."""
    region = (labels >= brain[0]) & (labels <= brain[1])
    n = int(region.sum())
    return 100.0 * int((pred[region] > threshold).sum()) / n if n else float("nan")


def air_mae(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray,
            threshold: float = AIR_HU) -> float:
    """Mean |pred - ref| over the mask voxels whose reference is below ``threshold``."""
    air = mask & (ref < threshold)
    n = int(air.sum())
    if not n:
        return float("nan")
    return float(np.abs(pred[air].astype(np.float64) - ref[air].astype(np.float64)).mean())


def anatomy_metrics(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray,
                    labels: np.ndarray) -> dict[str, float]:
    """The three figures (see the module docstring); all arrays on one grid."""
    shapes = {np.shape(a) for a in (pred, ref, mask, labels)}
    if len(shapes) != 1:
        raise InputError(f"anatomy metrics: prediction, reference, mask and labels differ in "
                         f"shape ({', '.join(str(s) for s in sorted(shapes))})")
    pred, ref = np.asarray(pred), np.asarray(ref)
    mask = np.asarray(mask) > 0
    labels = np.rint(np.asarray(labels)).astype(np.int64)
    return {"bone_dice_300": bone_dice(pred, ref, mask),
            "brain_over_300_pct": brain_over_pct(pred, labels),
            "air_mae": air_mae(pred, ref, mask)}
