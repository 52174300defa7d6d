"""Small cylinder phantoms with known geometry for the dose tests (3 mm voxels)."""

from __future__ import annotations

import numpy as np

from medxlate.io import Volume

SPACING = 3.0
SHAPE = (40, 40, 20)
BODY_RADIUS = 50.0
TARGET_RADIUS = 15.0
SOFT_HU = 40.0
BONE_HU = 1500.0


def grid() -> Volume:
    affine = np.diag([SPACING] * 3 + [1.0])
    affine[:3, 3] = -SPACING * (np.asarray(SHAPE) - 1) / 2  # centred on the world origin
    return Volume(np.zeros(SHAPE, np.float32), affine, "CT")


def world() -> np.ndarray:
    g = grid()
    return g.world(np.indices(SHAPE).reshape(3, -1).T).reshape(*SHAPE, 3)


def cylinder() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(CT in HU, body, target): soft tissue cylinder along z in air, sphere target at 0."""
    w = world()
    body = np.hypot(w[..., 0], w[..., 1]) <= BODY_RADIUS
    ct = np.where(body, SOFT_HU, -1000.0).astype(np.float32)
    target = np.sum(w ** 2, axis=-1) <= TARGET_RADIUS ** 2
    return ct, body, target


def half_shell() -> np.ndarray:
    """A 9 mm bone shell at radius 38-47 mm, only where y > 0 (anterior half)."""
    w = world()
    r = np.hypot(w[..., 0], w[..., 1])
    return (r >= 38.0) & (r <= 47.0) & (w[..., 1] > 0)
