"""Target registration error against a known truth transform (phantom truth.json).

truth.json (``medxlate phantom``) holds ``transform.mr_to_ct``: a 4x4 matrix on RAS mm with
``x_ct = mr_to_ct @ [x_mr, 1]`` for the same anatomical point, i.e. the direction of our
CT->MR registration transform (which maps MR points to CT points).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medxlate.errors import InputError
from medxlate.preprocess.itk_bridge import transform_points_ras


def read_truth_matrix(path: Path) -> np.ndarray:
    """The 4x4 ``mr_to_ct`` RAS matrix of a truth.json."""
    try:
        truth = json.loads(Path(path).read_text())
        matrix = np.asarray(truth["transform"]["mr_to_ct"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a readable truth.json with transform.mr_to_ct "
                         f"({exc})") from exc
    if matrix.shape != (4, 4):
        raise InputError(f"{path}: transform.mr_to_ct must be 4x4")
    return matrix


def tre_mm(transform: sitk.Transform, mr_to_ct: np.ndarray, points_ras: np.ndarray) -> dict:
    """Distances (mm) between estimated and true CT positions of MR ``points_ras`` (N, 3)."""
    estimated = transform_points_ras(transform, points_ras)
    true = points_ras @ mr_to_ct[:3, :3].T + mr_to_ct[:3, 3]
    err = np.linalg.norm(estimated - true, axis=1)
    return {"median": round(float(np.median(err)), 4), "mean": round(float(err.mean()), 4),
            "p95": round(float(np.percentile(err, 95)), 4), "max": round(float(err.max()), 4),
            "n_points": len(err)}


def body_points(mask: np.ndarray, affine: np.ndarray, n: int = 5000, seed: int = 0) -> np.ndarray:
    """Up to ``n`` random RAS points at voxel centres inside ``mask``."""
    idx = np.argwhere(mask)
    if len(idx) > n:
        idx = idx[np.random.default_rng(seed).choice(len(idx), n, replace=False)]
    return idx @ affine[:3, :3].T + affine[:3, 3]
