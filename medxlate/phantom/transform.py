"""The true MR->CT rigid transform of a phantom subject, and helpers to use it.

Convention (also written into every truth.json): ``mr_to_ct`` is a 4x4 matrix acting on
homogeneous RAS+ world coordinates in millimetres (the NIfTI/nibabel world of the files):
a point at ``x_mr`` in the world of mr.nii.gz is the same anatomical point as
``x_ct = mr_to_ct @ [x_mr, 1]`` in the world of ct.nii.gz. This is also the direction of
an ITK/SimpleITK transform that registers the CT (moving) onto the MR (fixed): such a
transform maps fixed-image points to moving-image points, in LPS; ``mr_to_ct_lps`` in
truth.json is that matrix.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def axis_angle(axis, angle_deg: float) -> np.ndarray:
    """3x3 rotation by ``angle_deg`` about unit ``axis`` (Rodrigues' formula)."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.deg2rad(angle_deg)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)


def random_misalignment(rng: np.random.Generator, max_deg: float, max_mm: float,
                        flip: bool) -> dict:
    """Draw a rigid misalignment: rotation angle uniform in [0, max_deg] about a uniformly
    random axis, translation of length uniform in [0, max_mm] in a uniformly random direction,
    and with ``flip`` a 180-degree turn about the left-right (x) or anterior-posterior (y)
    axis, chosen at random."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = float(rng.uniform(0, max_deg))
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    translation = direction * rng.uniform(0, max_mm)
    flip_axis = str(rng.choice(["x", "y"])) if flip else None
    return {"rotation_axis": axis.tolist(), "rotation_deg": angle,
            "translation_mm": translation.tolist(), "flip_axis": flip_axis}


def misalignment_matrix(mis: dict, center_ct) -> np.ndarray:
    """4x4 ``mr_to_ct``: x_ct = R (x_mr - c) + c + t, R = R_small @ R_flip, c in CT world."""
    rot = axis_angle(mis["rotation_axis"], mis["rotation_deg"])
    if mis.get("flip_axis"):
        rot = rot @ axis_angle({"x": (1, 0, 0), "y": (0, 1, 0)}[mis["flip_axis"]], 180.0)
    c = np.asarray(center_ct, float)
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = c - rot @ c + np.asarray(mis["translation_mm"], float)
    return m


def apply(matrix, points) -> np.ndarray:
    """Apply a 4x4 matrix to points of shape (..., 3)."""
    matrix = np.asarray(matrix, float)
    points = np.asarray(points, float)
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def load_truth(path: Path | str) -> dict:
    """Read a subject's truth.json (a path to the file or to the subject folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "truth.json"
    return json.loads(path.read_text())


def mr_to_ct(truth: dict) -> np.ndarray:
    """The 4x4 RAS mm matrix taking MR world points to CT world points."""
    return np.asarray(truth["transform"]["mr_to_ct"], float)


def mr_points_to_ct(points, truth: dict) -> np.ndarray:
    """Map RAS mm points from the MR world to the CT world (shape (..., 3))."""
    return apply(mr_to_ct(truth), points)


def ct_points_to_mr(points, truth: dict) -> np.ndarray:
    """Map RAS mm points from the CT world to the MR world (shape (..., 3))."""
    return apply(np.linalg.inv(mr_to_ct(truth)), points)


def registration_error_mm(estimated_mr_to_ct, truth: dict, mr_points) -> np.ndarray:
    """Target registration error (mm) of an estimated MR->CT matrix at MR world points."""
    mr_points = np.asarray(mr_points, float)
    return np.linalg.norm(apply(estimated_mr_to_ct, mr_points)
                          - mr_points_to_ct(mr_points, truth), axis=-1)


def to_lps(matrix_ras) -> np.ndarray:
    """The same transform expressed on LPS coordinates (ITK, DICOM)."""
    return RAS_TO_LPS @ np.asarray(matrix_ras, float) @ RAS_TO_LPS
