"""Step 1: read an input image, reorient it to canonical RAS+, and validate it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from medxlate.errors import InputError
from medxlate.io import Volume, read_volume


def validate(vol: Volume, what: str, params: dict) -> Volume:
    """Refuse images a preprocessing run cannot use, naming the problem.

    Args:
        vol: the canonical volume.
        what: how to call it in messages (e.g. "sub-001 CT (ct.nii.gz)").
        params: ``steps.read`` (``min_spacing_mm``, ``max_spacing_mm``, ``min_size``).
    """
    shape = vol.shape
    if min(shape) == 0:
        raise InputError(f"{what}: image has zero size {shape}")
    if sum(n > 1 for n in shape) < 3 or min(shape) < int(params["min_size"]):
        raise InputError(f"{what}: image of shape {shape} is not a 3D volume (at least "
                         f"{params['min_size']} voxels along every axis are needed)")
    spacing = vol.spacing
    if not all(np.isfinite(spacing)) or min(spacing) < float(params["min_spacing_mm"]) \
            or max(spacing) > float(params["max_spacing_mm"]):
        raise InputError(f"{what}: implausible voxel spacing {tuple(round(s, 4) for s in spacing)}"
                         f" mm (expected {params['min_spacing_mm']}..{params['max_spacing_mm']})")
    if not np.isfinite(vol.affine).all() or abs(np.linalg.det(vol.affine[:3, :3])) < 1e-9:
        raise InputError(f"{what}: invalid (singular or non-finite) orientation matrix")
    finite = np.isfinite(vol.array)
    if not finite.all():
        raise InputError(f"{what}: {int((~finite).sum())} voxels are NaN or infinite")
    return vol


def read_input(path: Path, modality: str, what: str, params: dict) -> Volume:
    """Read ``path`` as ``modality`` ("MR", "CT" or "unknown" for masks), canonical + valid."""
    vol = read_volume(path, modality=modality).canonical()
    if modality != "unknown" and vol.modality not in (modality, "unknown"):
        raise InputError(f"{what}: the file says it is {vol.modality}, expected {modality}")
    vol.modality = modality
    return validate(vol, what, params)


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a folder's files (relative names and contents, sorted)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
