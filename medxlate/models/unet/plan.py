"""Plan a U-Net from the dataset's fingerprint and a memory budget, as nnU-Net plans. Torch-free.

The fingerprint (:func:`fingerprint`) is what preprocess recorded about the training subjects:
the working spacing, each subject's source spacing and body-box shape, the stored 3D volume
or 2D slice size, and intensities inside the body. :func:`make_plan` turns it into

- ``spacing_mm``: the working spacing. Preprocess already resampled every subject to one
  spacing, so the plan takes it (nnU-Net's median spacing is recorded beside it as
  ``median_source_spacing_mm``); another spacing needs another `medxlate preprocess` run.
- ``patch_size`` (3D): nnU-Net's rule: start from the median body-box shape (at most the
  stored volumes), a multiple of the network's downsampling factor, and shrink the axis that
  is largest relative to the median shape until one training step of ``batch_size`` 2 fits
  ``memory_mb``.
- ``context`` (2.5D): ``k = max(1, round(context_mm / slice spacing))`` neighbouring slices
  on either side; ``patch_size`` is the stored slice size.
- ``batch_size``: as many samples as ``memory_mb`` holds, at least 1 (2 for 3D when it fits),
  at most ``max_batch`` and, for 3D, at most 5 % of the dataset's body voxels (nnU-Net).
- ``normalisation``: the dataset's (CT window, MR percentiles), with the body intensity
  statistics of the fingerprint.

Every planned value that the config (or ``--set``) gives explicitly is kept, after checks
that refuse impossible values with one line (:func:`check_overrides`).

Example:
    >>> fp = {"spacing_mm": [2.0, 2.0, 2.0], "volume_size": [64, 64, 64],
    ...       "slice_size": [64, 64], "slice_axis": 2, "shapes": [[60, 60, 60]] * 4,
    ...       "source_spacings": [[1.0, 1.0, 1.0]] * 4, "normalisation": {}}
    >>> cfg = {"filters": [8, 16, 32], "memory_mb": 100000, "max_batch": 2,
    ...        "patch_size": None, "batch_size": None, "context": None, "spacing_mm": None}
    >>> make_plan(fp, cfg, "3d")["patch_size"]
    [64, 64, 64]
"""

from __future__ import annotations

import math
from statistics import median
from typing import Any

from medxlate.errors import UsageError

# Float32 tensors a residual stage keeps for the backward pass per voxel and filter
# (two convolutions, two instance norms, activations, the residual branch, the decoder's
# transposed convolution and concatenation): a deliberately round model of DynUNet's use.
TENSORS_PER_STAGE = 24
BYTES = 4


def multiple_of(n_stages: int) -> int:
    """The downsampling factor of ``n_stages`` stages (stride 2 between stages)."""
    return 2 ** (int(n_stages) - 1)


def step_memory_mb(patch: list[int], batch: int, filters: list[int], in_channels: int = 1
                   ) -> float:
    """Estimated MB of one training step: activations of every stage plus weights, gradients
    and the two Adam moments."""
    dims = len(patch)
    voxels = math.prod(int(p) for p in patch)
    acts = 0.0
    for s, f in enumerate(filters):
        acts += voxels / (2 ** dims) ** s * f * TENSORS_PER_STAGE
    kernel = 3 ** dims
    params = 0
    prev = in_channels
    for f in filters:
        params += 3 * kernel * prev * f + 2 * kernel * f * f   # encoder + decoder blocks
        prev = f
    return (batch * acts + 4 * params) * BYTES / 2 ** 20


def fingerprint(dataset, split: str = "train", subject_ids: list[str] | None = None,
                max_subjects: int = 20) -> dict[str, Any]:
    """The planner's view of a dataset (a :class:`medxlate.preprocess.dataset.Dataset`).

    Intensity statistics come from the stored volumes (3D) or slices of up to
    ``max_subjects`` subjects, inside the body, in network units ([-1, 1]).
    """
    import numpy as np

    info = dataset.info
    subjects = [s for s in dataset.subjects(None if subject_ids else split)
                if subject_ids is None or s["id"] in subject_ids]
    shapes = [list(s["shape"]) for s in subjects if s.get("shape")]
    sources = [list(s["inputs"]["mr"]["spacing_mm"]) for s in subjects
               if s.get("inputs", {}).get("mr", {}).get("spacing_mm")]
    body_voxels = sum(int(s.get("mask", {}).get("body_voxels", 0)) for s in subjects)
    mr_vals, ct_vals = [], []
    for s in subjects[:max_subjects]:
        try:
            arrays = (dataset.volumes(s["id"]) if info.get("volume_size")
                      else dataset.shard(s["id"]))
        except Exception:  # a subject without stored arrays adds no intensities
            continue
        mask = np.asarray(arrays["mask"]) > 0
        if "mr" in arrays and "ct" in arrays and mask.any():
            mr_vals.append(np.asarray(arrays["mr"], np.float32)[mask][::7])
            ct_vals.append(np.asarray(arrays["ct"], np.float32)[mask][::7])
    stats: dict[str, Any] = {}
    if mr_vals:
        mr, ct = np.concatenate(mr_vals), np.concatenate(ct_vals)
        stats = {"mr_body_mean": round(float(mr.mean()), 4),
                 "mr_body_std": round(float(mr.std()), 4),
                 "ct_body_percentiles_0_5_50_95_100": [
                     round(float(v), 4) for v in np.percentile(ct, [0, 5, 50, 95, 100])]}
    return {"spacing_mm": [float(v) for v in info["spacing_mm"]],
            "volume_size": info.get("volume_size"), "slice_size": info.get("slice_size"),
            "slice_axis": int(info.get("slice_axis", 2)), "shapes": shapes,
            "source_spacings": sources, "body_voxels": body_voxels,
            "subjects": len(subjects), "normalisation": info.get("normalisation", {}),
            "intensities": stats}


def _positive_list(value, n: int, name: str, integer: bool) -> list:
    if not isinstance(value, list | tuple) or len(value) != n:
        raise UsageError(f"{name}={value!r}: expected {n} numbers")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float) or (integer and v != int(v)):
            raise UsageError(f"{name}={value!r}: expected {n} "
                             f"{'integers' if integer else 'numbers'}")
        if v <= 0:
            raise UsageError(f"{name}={list(value)}: every value must be positive")
        out.append(int(v) if integer else float(v))
    return out


def check_overrides(fp: dict[str, Any], config: dict[str, Any], dims: str) -> None:
    """Refuse explicit plan values that cannot work, with one line each (UsageError)."""
    n_spatial = 3 if dims == "3d" else 2
    filters = config["filters"]
    if not isinstance(filters, list | tuple) or len(filters) < 3 or any(
            isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in filters):
        raise UsageError(f"filters={filters!r}: DynUNet needs at least 3 stages of "
                         "positive integer widths")
    mult = multiple_of(len(filters))
    if config.get("spacing_mm") is not None:
        want = _positive_list(config["spacing_mm"], 3, "spacing_mm", integer=False)
        have = fp["spacing_mm"]
        if any(abs(a - b) > 1e-6 for a, b in zip(want, have)):
            raise UsageError(f"spacing_mm={want}: the dataset is at {have} mm; preprocess "
                             f"with --set 'steps.resample.spacing_mm={want}'")
    if config.get("patch_size") is not None:
        patch = _positive_list(config["patch_size"], n_spatial, "patch_size", integer=True)
        room = fp["volume_size"] if dims == "3d" else fp["slice_size"]
        if room is None:
            raise UsageError(f"the dataset has no {'3D volumes' if dims == '3d' else 'slices'}"
                             " to cut patches from")
        if any(p > r for p, r in zip(patch, room)):
            raise UsageError(f"patch_size={patch} is larger than the dataset's "
                             f"{'volumes' if dims == '3d' else 'slices'} {list(room)}")
        if any(p % mult for p in patch):
            raise UsageError(f"patch_size={patch}: each size must be a multiple of {mult} "
                             f"({len(config['filters'])} stages)")
    for key in ("batch_size", "context"):
        value = config.get(key)
        low = 1 if key == "batch_size" else 0
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < low):
            raise UsageError(f"{key}={value!r}: must be an integer >= {low}")


def _fit_patch(fp: dict[str, Any], filters: list[int], budget_mb: float) -> list[int]:
    mult = multiple_of(len(filters))
    room = [int(v) for v in fp["volume_size"]]
    shapes = fp["shapes"] or [room]
    med = [median(s[i] for s in shapes) for i in range(3)]
    # The median body box, rounded up to the network's multiple, at most the stored volume.
    patch = [min(r // mult * mult, max(mult, math.ceil(m / mult) * mult))
             for m, r in zip(med, room)]
    while step_memory_mb(patch, 2, filters) > budget_mb and max(patch) > mult:
        # nnU-Net shrinks the axis whose patch is largest relative to the median shape.
        ratios = [p / m if p > mult else -1 for p, m in zip(patch, med)]
        axis = ratios.index(max(ratios))
        patch[axis] -= mult
    return patch


def make_plan(fp: dict[str, Any], config: dict[str, Any], dims: str) -> dict[str, Any]:
    """The plan of ``config`` on fingerprint ``fp`` (explicit config values win)."""
    check_overrides(fp, config, dims)
    filters = [int(f) for f in config["filters"]]
    budget = float(config["memory_mb"])
    if budget <= 0:
        raise UsageError(f"memory_mb={budget}: must be positive")
    overridden = sorted(k for k in ("patch_size", "batch_size", "context", "spacing_mm")
                        if config.get(k) is not None)
    if dims == "3d":
        if fp["volume_size"] is None:
            raise UsageError("unet-3d trains on 3D volumes: preprocess with --set "
                             "steps.volumes.enabled=true --set 'steps.volumes.size=[D,H,W]'")
        context = 0
        patch = (list(config["patch_size"]) if config.get("patch_size") is not None
                 else _fit_patch(fp, filters, budget))
        in_channels = 1
    else:
        spacing_axis = fp["spacing_mm"][fp["slice_axis"]]
        context = (int(config["context"]) if config.get("context") is not None
                   else max(1, round(float(config["context_mm"]) / spacing_axis)))
        patch = (list(config["patch_size"]) if config.get("patch_size") is not None
                 else [int(v) for v in fp["slice_size"]])
        mult = multiple_of(len(filters))
        if any(p % mult for p in patch):
            raise UsageError(f"the dataset's slices {patch} are not a multiple of {mult}; "
                             "set patch_size or preprocess another steps.slices.size")
        in_channels = 2 * context + 1
    one = step_memory_mb(patch, 1, filters, in_channels)
    fixed = step_memory_mb(patch, 0, filters, in_channels)
    if config.get("batch_size") is not None:
        batch = int(config["batch_size"])
    else:
        batch = max(1, min(int(config["max_batch"]), int((budget - fixed) // max(one - fixed,
                                                                                 1e-9))))
        if dims == "3d" and fp.get("body_voxels"):
            # nnU-Net: a batch covers at most 5 % of the dataset's voxels.
            cap = int(0.05 * fp["body_voxels"] / math.prod(patch))
            batch = max(1, min(batch, max(cap, 1)))
    sources = fp.get("source_spacings") or []
    return {
        "dims": dims, "spacing_mm": fp["spacing_mm"],
        "median_source_spacing_mm": ([median(s[i] for s in sources) for i in range(3)]
                                     if sources else None),
        "median_shape": ([median(s[i] for s in fp["shapes"]) for i in range(3)]
                         if fp["shapes"] else None),
        "patch_size": [int(p) for p in patch], "context": context,
        "in_channels": in_channels, "batch_size": batch, "filters": filters,
        "multiple": multiple_of(len(filters)),
        "memory_mb_estimate": round(step_memory_mb(patch, batch, filters, in_channels), 1),
        "memory_mb_budget": budget, "normalisation": fp.get("normalisation"),
        "intensities": fp.get("intensities", {}), "subjects": fp.get("subjects"),
        "overridden": overridden,
    }


def apply_plan(config: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the plan's values filled in and the plan itself under ``"plan"``."""
    out = dict(config, plan=plan, patch_size=plan["patch_size"],
               batch_size=plan["batch_size"], context=plan["context"],
               spacing_mm=plan["spacing_mm"])
    if plan["dims"] == "2.5d":
        out["slice_size"] = plan["patch_size"]
    return out
