"""Bone Dice, brain above 300 HU and air MAE against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medxlate.errors import InputError
from medxlate.evaluate.anatomy import air_mae, anatomy_metrics, bone_dice, brain_over_pct

# seven voxels; by hand:
#   pred > 300 in the mask: voxels 0, 1, 3, 6 (4); ref > 300 in the mask: 0, 1, 2 (3);
#   both: 0, 1 -> Dice 2 * 2 / (4 + 3) = 4/7
#   brain (labels 2..60): voxels 3, 4, 5 -> pred 400, -900, -1000: one of three above 300
#   (voxel 6 has label 61 and pred 350: not brain)
#   reference air (< -400) in the mask: voxel 4 only (voxel 5 lies outside the mask)
#   -> |-900 - (-1000)| = 100
PRED = np.array([500, 500, 100, 400, -900, -1000, 350], np.float32)
REF = np.array([400, 1000, 500, 100, -1000, -500, 40], np.float32)
MASK = np.array([1, 1, 1, 1, 1, 0, 1], bool)
LABELS = np.array([0, 0, 0, 2, 60, 2, 61])


def test_figures_of_a_constructed_case():
    got = anatomy_metrics(PRED, REF, MASK, LABELS)
    assert got["bone_dice_300"] == pytest.approx(4 / 7)
    assert got["brain_over_300_pct"] == pytest.approx(100 / 3)
    assert got["air_mae"] == pytest.approx(100.0)


def test_figures_on_a_3d_grid_with_float_labels():
    # the same voxels on a 3-D grid, labels as read from NIfTI (float)
    shape = (7, 1, 1)
    got = anatomy_metrics(PRED.reshape(shape), REF.reshape(shape),
                          MASK.reshape(shape).astype(np.float32),
                          LABELS.reshape(shape).astype(np.float32))
    assert got == pytest.approx({"bone_dice_300": 4 / 7, "brain_over_300_pct": 100 / 3,
                                 "air_mae": 100.0})


def test_perfect_and_disjoint_bone():
    ref = np.array([1000.0, 1000, 0, 0])
    mask = np.ones(4, bool)
    assert bone_dice(ref, ref, mask) == 1.0
    assert bone_dice(ref[::-1].copy(), ref, mask) == 0.0
    # exactly 300 HU is not above 300
    assert bone_dice(np.array([300.0, 1000, 0, 0]), ref, mask) == pytest.approx(2 / 3)


def test_empty_regions_are_undefined_not_zero():
    flat = np.zeros(5, np.float32)
    assert math.isnan(bone_dice(flat, flat, np.ones(5, bool)))
    assert math.isnan(brain_over_pct(flat, np.zeros(5, int)))
    assert math.isnan(air_mae(flat, flat, np.ones(5, bool)))


def test_shape_mismatch_is_one_clear_error():
    with pytest.raises(InputError, match="differ in shape"):
        anatomy_metrics(PRED, REF, MASK, LABELS[:3])
