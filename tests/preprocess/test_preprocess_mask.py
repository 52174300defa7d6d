"""Body masks on synthetic volumes with a known outline."""

import numpy as np
import pytest

from medxlate.errors import InputError
from medxlate.io import Volume
from medxlate.preprocess.mask import body_mask, closing


def _head(shape=(60, 60, 40), spacing=(2.0, 2.0, 2.5)):
    """A sphere-ish body with a dark cavity (CSF/air-like) inside, in MR and CT."""
    grid = np.stack(np.meshgrid(*[(np.arange(n) - n / 2 + 0.5) * s
                                  for n, s in zip(shape, spacing)], indexing="ij"))
    r = np.sqrt((grid ** 2).sum(0))
    body = r < 45.0
    cavity = r < 10.0
    mr = np.where(body, 300.0, 0.0) + np.random.default_rng(0).normal(0, 5, shape)
    mr[cavity] = 2.0
    ct = np.where(body, 40.0, -1000.0)
    ct[cavity] = -1000.0
    ct[(r > 38) & (r < 42)] = 1200.0  # bone ring
    aff = np.diag([*spacing, 1.0])
    return Volume(mr.astype(np.float32), aff, "MR"), Volume(ct.astype(np.float32), aff, "CT"), body


@pytest.mark.parametrize("which", [0, 1])
def test_mask_matches_body_and_fills_cavity(which):
    vols = _head()
    truth = vols[2]
    mask = body_mask(vols[which])
    assert mask.dtype == bool
    dice = 2 * (mask & truth).sum() / (mask.sum() + truth.sum())
    assert dice > 0.97
    assert mask[30, 30, 20]  # the dark cavity at the centre is inside the body


def test_mask_drops_small_disconnected_blob():
    mr, _, _ = _head()
    a = mr.array.copy()
    a[0:3, 0:3, 0:3] = 500.0  # a marker far from the body
    mask = body_mask(mr.with_array(a))
    assert not mask[:3, :3, :3].any()


def test_closing_is_spacing_aware():
    m = np.zeros((40, 40, 40), bool)
    m[10:30, 10:30, 10:19] = True
    m[10:30, 10:30, 21:30] = True  # gap of 2 voxels along z
    # 2 voxels at 2.5 mm = 5 mm gap: a 2 mm ball cannot bridge it, a 3 mm one can.
    assert not closing(m, 2.0, (1.0, 1.0, 2.5))[20, 20, 20]
    assert closing(m, 3.0, (1.0, 1.0, 2.5))[20, 20, 20]


def test_constant_image_is_an_input_error():
    with pytest.raises(InputError, match="constant"):
        body_mask(Volume(np.zeros((8, 8, 8), np.float32), np.eye(4), "MR"))
    with pytest.raises(InputError, match="empty"):
        body_mask(Volume(np.full((8, 8, 8), -1000.0, np.float32), np.eye(4), "CT"))
