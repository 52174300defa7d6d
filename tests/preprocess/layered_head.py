"""Constructed heads with known outlines, in four MR contrasts (tests of synthesis masks).

An ellipsoidal head on a neck that leaves the field of view at the bottom, built from nested
shells measured inward from the skin (mm): skin, subcutaneous fat, skull (two tables of
cortical bone, dark in every contrast, around marrow), CSF, grey and white matter, with a
sinus (air) inside the skull and a cord joining the brain to the muscle of the neck. The reference mask is every voxel inside the skin plus
the enclosed sinus, by construction. Signals are relative (T1w, T2w, PD, FLAIR): on T2w and
FLAIR skin, muscle and skull are dark and CSF (T2w) or fat bright, the case where a threshold
at half of Otsu's level loses the outer layers.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

CONTRASTS = ("t1", "t2", "pd", "flair")
#: tissue -> (T1w, T2w, PD, FLAIR) relative signal.
SIGNALS = {
    "air": (0, 0, 0, 0), "skin": (60, 16, 55, 25), "fat": (120, 90, 95, 85),
    "bone": (4, 3, 5, 3), "csf": (20, 160, 100, 10), "gm": (75, 75, 85, 100),
    "wm": (110, 50, 70, 80), "muscle": (50, 22, 60, 30), "marrow": (70, 45, 50, 50),
}
#: (tissue, depth below the skin where it ends, mm); white matter fills the rest.
SHELLS = (("skin", 3.0), ("fat", 6.0), ("bone", 8.0), ("marrow", 10.0), ("bone", 12.0),
          ("csf", 16.0), ("gm", 20.0))


def head_labels(shape=(112, 128, 120), spacing: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(tissue index per voxel into ``list(SIGNALS)``, the reference head mask)."""
    names = list(SIGNALS)
    idx = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape],
                               indexing="ij"))
    centre = np.array([shape[0] / 2, shape[1] / 2, shape[2] * 0.58], np.float32)
    semi_mm = np.array([48.0, 56.0, 52.0], np.float32)
    rel = (idx - centre[:, None, None, None]) * spacing / semi_mm[:, None, None, None]
    radius = np.sqrt((rel ** 2).sum(axis=0))
    # depth below the skin along the ellipsoid's radius, in mm (exact on the axes)
    depth = (1.0 - radius) * float(semi_mm.min())
    head = radius <= 1.0
    neck_r = np.hypot((idx[0] - centre[0]) * spacing, (idx[1] - centre[1] - 4) * spacing)
    neck = (neck_r <= 34.0) & (idx[2] < centre[2])
    neck_depth = 34.0 - neck_r
    labels = np.zeros(shape, np.uint8)
    body = head | neck
    labels[body] = names.index("muscle")
    skin = (head & (depth < 3.0)) | (neck & ~head & (neck_depth < 3.0))
    fat = (head & (depth >= 3.0) & (depth < 6.0)) | (neck & ~head & (neck_depth >= 3.0)
                                                     & (neck_depth < 6.0))
    labels[fat] = names.index("fat")
    inner = head & (depth >= 6.0)
    last = 6.0
    for tissue, end in SHELLS[2:]:
        labels[inner & (depth >= last) & (depth < end)] = names.index(tissue)
        last = end
    labels[inner & (depth >= last)] = names.index("wm")
    labels[skin] = names.index("skin")
    # brain stem and cord: the brain reaches the neck through the skull base
    cord = (np.hypot((idx[0] - centre[0]) * spacing, (idx[1] - centre[1] - 4) * spacing) <= 8.0)
    labels[cord & (idx[2] < centre[2]) & ((head & (depth >= 6.0)) | (neck & ~head))] = \
        names.index("wm")
    # a sinus: air enclosed by bone, in front, low in the head
    sinus = (((idx[0] - centre[0]) * spacing / 10) ** 2
             + ((idx[1] - centre[1] - 40 / spacing) * spacing / 7) ** 2
             + ((idx[2] - centre[2] + 14 / spacing) * spacing / 8) ** 2) <= 1.0
    labels[sinus & head] = names.index("air")
    return labels, body


def render(labels: np.ndarray, contrast: str, noise: float = 0.02, seed: int = 0
           ) -> np.ndarray:
    """The image of ``contrast``: per-tissue signal, 0.6 voxel blur, Rician noise of
    ``noise`` times the brightest tissue."""
    column = CONTRASTS.index(contrast)
    lut = np.array([SIGNALS[t][column] for t in SIGNALS], np.float32)
    image = ndimage.gaussian_filter(lut[labels], 0.6)
    sigma = noise * float(lut.max())
    rng = np.random.default_rng(seed)
    real = image + rng.normal(0.0, sigma, image.shape)
    return np.hypot(real, rng.normal(0.0, sigma, image.shape)).astype(np.float32)
