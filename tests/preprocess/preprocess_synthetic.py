"""Synthetic MR/CT pairs with an exactly known misalignment (analytic head model)."""

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from medxlate.io import Volume

# (label, centre mm, radii mm, MR value, CT HU); later entries overwrite earlier ones.
_PARTS = [
    ("skin", (0, 0, 0), (75, 90, 80), 500.0, 40.0),
    ("neck", (0, -10, -70), (45, 50, 40), 450.0, 35.0),
    ("skull", (0, 0, 0), (70, 85, 75), 40.0, 1200.0),
    ("brain", (0, 0, 0), (64, 79, 69), 380.0, 35.0),
    ("spine", (0, -25, -75), (10, 10, 30), 150.0, 500.0),
    ("ventricle_l", (-9, 5, 10), (5, 18, 8), 120.0, 5.0),
    ("ventricle_r", (9, 5, 10), (5, 18, 8), 120.0, 5.0),
    ("lesion", (25, -30, 20), (10, 12, 9), 650.0, 60.0),
    ("eye_l", (-30, 75, -20), (12, 12, 12), 150.0, 10.0),
    ("eye_r", (30, 75, -20), (12, 12, 12), 150.0, 10.0),
    ("sinus", (0, 70, -45), (10, 14, 10), 0.0, -1000.0),
]


def _sample(points: np.ndarray, modality: int) -> np.ndarray:
    values = np.full(len(points), 0.0 if modality == 0 else -1000.0, np.float32)
    for _, centre, radii, mr_value, ct_value in _PARTS:
        inside = (((points - centre) / radii) ** 2).sum(1) <= 1.0
        values[inside] = mr_value if modality == 0 else ct_value
    return values


def _grid(shape, spacing, origin):
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = origin
    return idx @ affine[:3, :3].T + affine[:3, 3], affine


def rigid_matrix(rotation_deg, translation_mm, flip: bool = False) -> np.ndarray:
    """4x4 RAS rigid matrix (x-y-z Euler angles in degrees), optionally after a half turn."""
    rot = Rotation.from_euler("xyz", rotation_deg, degrees=True).as_matrix()
    if flip:
        rot = rot @ np.diag([-1.0, 1.0, -1.0])  # specimen turned over about A-P
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rot, translation_mm
    return out


def make_pair(truth: np.ndarray, mr_spacing=(2.0, 2.0, 2.5), ct_spacing=(1.6, 1.6, 2.0),
              seed: int = 0):
    """MR (world = anatomy) and CT (world = truth @ anatomy) on different axis-aligned grids.

    ``truth`` maps MR world points onto the CT world points of the same anatomy.
    """
    rng = np.random.default_rng(seed)
    mr_shape = [int(200 / s) for s in mr_spacing]
    pts, mr_aff = _grid(mr_shape, mr_spacing, [-(n - 1) * s / 2 for n, s in
                                               zip(mr_shape, mr_spacing)])
    mr = _sample(pts, 0).reshape(mr_shape)
    mr = ndimage.gaussian_filter(mr, 0.7) + rng.normal(0, 8, mr_shape)
    mr = np.abs(mr)  # magnitude image: Rician-like background
    ct_shape = [int(220 / s) for s in ct_spacing]
    w, ct_aff = _grid(ct_shape, ct_spacing, [-(n - 1) * s / 2 + 7.0 for n, s in
                                             zip(ct_shape, ct_spacing)])
    inv = np.linalg.inv(truth)
    anatomy = w @ inv[:3, :3].T + inv[:3, 3]
    ct = _sample(anatomy, 1).reshape(ct_shape)
    ct = ndimage.gaussian_filter(ct, 0.7) + rng.normal(0, 10, ct_shape)
    return (Volume(mr.astype(np.float32), mr_aff, "MR"),
            Volume(ct.astype(np.float32), ct_aff, "CT"))


def body_points(mr: Volume, n: int = 4000, seed: int = 0) -> np.ndarray:
    """Random RAS points inside the analytic head (skin ellipsoid) on the MR grid."""
    idx = np.argwhere(mr.array > 100)
    pick = np.random.default_rng(seed).choice(len(idx), min(n, len(idx)), replace=False)
    return mr.world(idx[pick])


def write_pair(folder, truth=None, mr_spacing=(4.0, 4.0, 4.0), ct_spacing=(4.0, 4.0, 5.0),
               seed: int = 0, with_truth: bool = True):
    """Write a small synthetic pair as <folder>/{mr,ct}.nii.gz (+ truth.json); returns truth."""
    import json

    from medxlate.io.nifti import write_nifti

    truth = rigid_matrix((4, -3, 5), (5, -4, 6)) if truth is None else truth
    mr, ct = make_pair(truth, mr_spacing, ct_spacing, seed)
    folder.mkdir(parents=True, exist_ok=True)
    write_nifti(mr, folder / "mr.nii.gz")
    write_nifti(ct, folder / "ct.nii.gz")
    if with_truth:
        (folder / "truth.json").write_text(json.dumps({"transform": {"mr_to_ct":
                                                                     truth.tolist()}}))
    return truth


#: Fast settings for CLI tests on the small synthetic pairs (4 mm grids).
FAST = ["--set", "steps.resample.spacing_mm=[4,4,4]", "--set", "steps.slices.size=[64,64]",
        "--set", "steps.register.grid_mm=4", "--set", "steps.register.shrink_factors=[2,1]",
        "--set", "steps.register.smoothing_mm=[4,0]", "--set",
        "steps.register.search_spacing_mm=8"]
