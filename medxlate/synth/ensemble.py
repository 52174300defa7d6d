"""Test-time mirroring and model ensembles: several passes over one volume, mean and std in HU.

Each (member, view) pass is a whole synthesis of the volume (:func:`synthesize_volume`): a
view mirrors the canonical input along some of its axes, and the pass's output is mirrored
back, so every pass lands on the input's grid. The result is the voxel-wise mean over all
passes; the voxel-wise standard deviation (population, in the output's units: HU for CT) is
the uncertainty map. nnU-Net predicts with the same 2^n mirrorings of the axes its training
mirrored (Isensee et al., Nat. Methods 2021) and averages its five fold models.

Example:
    >>> mirror_views([0, 2])
    [(), (0,), (2,), (0, 2)]
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from medxlate.errors import UsageError, WeightsError


def mirror_views(axes) -> list[tuple[int, ...]]:
    """Every subset of ``axes`` (the identity first, then by size): the TTA views."""
    axes = sorted({int(a) for a in axes})
    return [tuple(c) for n in range(len(axes) + 1) for c in itertools.combinations(axes, n)]


def mirror(array: np.ndarray, view: tuple[int, ...]) -> np.ndarray:
    """``array`` flipped along the axes of ``view`` (its own inverse)."""
    return np.ascontiguousarray(np.flip(array, view)) if view else array


def mean_std(outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Voxel-wise mean and population standard deviation of equally shaped arrays, summed
    in float64 one array at a time (memory: two volumes beside the inputs)."""
    total = np.zeros(outputs[0].shape, np.float64)
    for a in outputs:
        total += a
    mean = total / len(outputs)
    var = np.zeros_like(mean)
    for a in outputs:
        var += (a - mean) ** 2
    return mean.astype(np.float32), np.sqrt(var / len(outputs)).astype(np.float32)


def tta_axes(model) -> list[int]:
    """Canonical volume axes that test-time mirroring flips: the axes the model's training
    mirrored (config ``mirror_axes``, network axes; None: all), mapped to the volume."""
    config = model.config
    dims = getattr(model.spec, "spatial_dims", "2d")
    chosen = config.get("mirror_axes")
    if dims == "3d":
        return [0, 1, 2] if chosen is None else [int(a) for a in chosen]
    slice_axis = int((getattr(model.meta, "data", None) or {}).get("slice_axis", 2) or 2)
    kept = [a for a in (0, 1, 2) if a != slice_axis]
    return kept if chosen is None else [kept[int(a)] for a in chosen]


def expand_weights(paths: list[Path]) -> list[Path]:
    """Weights files of ``--weights``: files as given; a folder gives its ``*.safetensors``
    and its subfolders' ``model.safetensors`` (fold runs: fold_0/model.safetensors ...),
    sorted."""
    out: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found = sorted(set(path.glob("*.safetensors")) | set(path.glob("*/model.safetensors")))
            if not found:
                raise WeightsError(f"{path}: no *.safetensors or */model.safetensors inside")
            out.extend(found)
        else:
            out.append(path)
    if len(set(p.resolve() for p in out)) != len(out):
        raise UsageError("--weights names the same file twice")
    return out


def check_members(members: list) -> None:
    """All members must be the same model on the same grid and intensity scale."""
    first = members[0]
    for m in members[1:]:
        for what, a, b in (("model", m.spec.name, first.spec.name),
                           ("normalisation", m.meta.normalisation, first.meta.normalisation),
                           ("spacing", (m.meta.data or {}).get("spacing_mm"),
                            (first.meta.data or {}).get("spacing_mm"))):
            if a != b:
                raise WeightsError(f"ensemble members differ in {what}: {m.weights} vs "
                                   f"{first.weights}")


def synthesize_ensemble(vol, model, opts, generator=None,
                        progress: Callable[[int, int], Any] | None = None):
    """Like :func:`medxlate.synth.volume.synthesize_volume`, over every member of
    ``model.members`` (or ``model`` alone) and, with ``opts.tta``, every mirroring view.
    Returns (mean, std or None for a single pass, info)."""
    from medxlate.synth.volume import synthesize_volume

    members = list(getattr(model, "members", None) or [model])
    views = mirror_views(tta_axes(model)) if getattr(opts, "tta", False) else [()]
    single = replace(opts, tta=False)
    outputs, info, first = [], {}, None
    for member in members:
        for view in views:
            source = vol.with_array(mirror(vol.array, view)) if view else vol
            sct, _, info = synthesize_volume(source, member, single, generator, progress)
            outputs.append(mirror(sct.array, view))
            first = first or sct
    if len(outputs) == 1:
        mean, std_vol = outputs[0], None
    else:
        mean, std = mean_std(outputs)
        std_vol = vol.with_array(std, modality=first.modality)
    info = {**info, "tta_views": [list(v) for v in views],
            "members": [{"weights": str(m.weights), "sha256": m.sha256} for m in members],
            "passes": len(outputs)}
    return vol.with_array(np.asarray(mean, np.float32), modality=first.modality), std_vol, info
