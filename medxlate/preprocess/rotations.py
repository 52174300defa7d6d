"""The 24 axis-aligned rotations used to initialise registration of flipped/rotated scans.

Real studies arrive with the patient or specimen turned between scans (head-first vs
feet-first, prone vs supine, a specimen flipped over). Those are rotations by multiples of
90 degrees about the scanner axes. Mirror images (determinant -1) are deliberately absent: a
rigid registration must never mirror anatomy (left-right swaps are the worst error in
radiotherapy); a mirrored header is an input problem to fix, not to register away.

Example:
    >>> len(AXIS_ROTATIONS), describe(np.diag([-1, 1, -1]))
    (24, '180 deg about A (y)')
"""

from __future__ import annotations

import itertools

import numpy as np

_AXIS_NAMES = ("R (x)", "A (y)", "S (z)")


def _all_rotations() -> list[np.ndarray]:
    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3))
            for row, (col, sign) in enumerate(zip(perm, signs)):
                m[row, col] = sign
            if np.linalg.det(m) > 0:
                mats.append(m)
    # Identity first, then by increasing rotation angle: ties in the search favour simple turns.
    return sorted(mats, key=lambda m: (round(angle_deg(m), 6), tuple(-m.ravel())))


def angle_deg(matrix: np.ndarray) -> float:
    """Rotation angle of a 3x3 rotation matrix, in degrees (0..180)."""
    cos = np.clip((np.trace(matrix) - 1.0) / 2.0, -1.0, 1.0)
    return float(np.degrees(np.arccos(cos)))


def describe(matrix: np.ndarray) -> str:
    """A short name such as 'identity', '90 deg about S (z)' or '120 deg about (1,1,-1)'."""
    m = np.asarray(matrix, dtype=np.float64)
    angle = angle_deg(m)
    if angle < 1e-6:
        return "identity"
    if abs(angle - 180.0) < 1e-6:
        outer = (m + np.eye(3)) / 2.0  # R = 2 a a^T - I for a half turn
        k = int(np.argmax(np.diag(outer)))
        axis = outer[:, k] / np.sqrt(outer[k, k])
    else:
        axis = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]])
        axis = axis / np.linalg.norm(axis)
    nonzero = np.flatnonzero(np.abs(axis) > 1e-6)
    if len(nonzero) == 1:
        k = int(nonzero[0])
        sign = "" if axis[k] > 0 or abs(angle - 180.0) < 1e-6 else "-"
        return f"{angle:.0f} deg about {sign}{_AXIS_NAMES[k]}"
    scaled = axis / np.min(np.abs(axis[nonzero]))
    return f"{angle:.0f} deg about ({','.join(str(round(a)) for a in scaled)})"


AXIS_ROTATIONS: tuple[np.ndarray, ...] = tuple(_all_rotations())
