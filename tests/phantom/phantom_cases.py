"""Small phantom subjects shared by the phantom tests (generated once per session)."""

from functools import cache

import numpy as np
from scipy import ndimage

from medxlate.phantom import PhantomConfig, make_subject

# Small but anatomically complete: the head at 1.5 mm, the pelvis at 1.6 x 1.6 x 2.5 mm.
BRAIN = PhantomConfig("brain", size=(128, 148, 112), spacing=(1.5, 1.5, 1.5),
                      contrasts=("t1w", "t2w"))
PELVIS = PhantomConfig("pelvis", size=(240, 184, 80), spacing=(1.6, 1.6, 2.5),
                       contrasts=("t1w", "t2w"))


@cache
def subject(region: str, seed: int = 0, flip: bool = False):
    base = BRAIN if region == "brain" else PELVIS
    cfg = PhantomConfig(**{**base.__dict__, "flip": flip})
    return make_subject(cfg, seed, 0)


def interior(labels: np.ndarray, label: int, iterations: int = 1) -> np.ndarray:
    """Voxels of ``label`` whose neighbours (6-connected, ``iterations`` deep) share it."""
    return ndimage.binary_erosion(labels == label, iterations=iterations)


def labels_on_mr(s) -> np.ndarray:
    """The CT-grid labels carried onto the MR grid through the saved transform (nearest)."""
    m = np.linalg.inv(s.labels_ct.affine) @ np.asarray(s.truth["transform"]["mr_to_ct"]) \
        @ s.labels.affine
    return ndimage.affine_transform(s.labels_ct.array, m[:3, :3], m[:3, 3],
                                    output_shape=s.labels.shape, order=0, cval=0.0)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))
