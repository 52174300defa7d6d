"""The U-Net planner: known fingerprints give hand-computed plans; bad overrides are refused."""

from __future__ import annotations

import pytest

from medxlate.errors import UsageError
from medxlate.models.unet.plan import make_plan, step_memory_mb


def _fp(**over):
    fp = {"spacing_mm": [2.0, 2.0, 2.0], "volume_size": [16, 16, 16], "slice_size": [64, 64],
          "slice_axis": 2, "shapes": [[16, 16, 16]] * 3, "body_voxels": 10 ** 6,
          "source_spacings": [[1.0, 1.0, 1.2], [1.0, 1.0, 1.0], [0.8, 0.8, 1.0]],
          "normalisation": {"ct": {"kind": "window", "low": -1024.0, "high": 3000.0}}}
    fp.update(over)
    return fp


def _cfg(**over):
    cfg = {"filters": [4, 8, 8], "memory_mb": 1000.0, "max_batch": 8, "context_mm": 4.0,
           "patch_size": None, "batch_size": None, "context": None, "spacing_mm": None}
    cfg.update(over)
    return cfg


def test_memory_model_by_hand():
    # One sample of a 16^3 patch, filters 4, 8, 8: activations 24 * (4096 * 4 + 512 * 8
    # + 64 * 8) floats; weights 3*27*1*4 + 2*27*4*4 + 3*27*4*8 + 2*27*8*8 + 3*27*8*8
    # + 2*27*8*8 = 15876, times 4 (weights, gradients, two Adam moments); 4 bytes each.
    floats = 24 * (4096 * 4 + 512 * 8 + 64 * 8) + 4 * 15876
    assert step_memory_mb([16, 16, 16], 1, [4, 8, 8]) == pytest.approx(floats * 4 / 2 ** 20)


def test_3d_patch_is_the_median_box_when_it_fits():
    fp = _fp(volume_size=[64, 80, 64], shapes=[[60, 70, 50], [58, 74, 52], [61, 71, 49]])
    plan = make_plan(fp, _cfg(memory_mb=10 ** 6), "3d")
    # median [60, 71, 50] rounded up to multiples of 4 (three stages), within the volumes
    assert plan["patch_size"] == [60, 72, 52]
    assert plan["spacing_mm"] == [2.0, 2.0, 2.0]
    assert plan["median_source_spacing_mm"] == [1.0, 1.0, 1.0]
    assert plan["context"] == 0 and plan["in_channels"] == 1


def test_3d_patch_shrinks_to_the_budget_like_nnunet():
    # Filters 4, 8, 8 keep 24 * (4 + 8/8 + 8/64) = 123 floats per patch voxel and sample,
    # plus 4 * 15876 for the weights. A 3 MB budget (786432 floats) at batch 2 allows
    # V <= 2938 voxels: 16^3 (4096) shrinks axis 0 (all ratios equal) to 12 (3072, still too
    # many), then axis 1 (ratio 1 > 12/16) to 12: 12*12*16 = 2304 fits (worked by hand).
    plan = make_plan(_fp(), _cfg(memory_mb=3.0), "3d")
    assert plan["patch_size"] == [12, 12, 16]
    # batch: (786432 - 63504) // (123 * 2304) = 2
    assert plan["batch_size"] == 2


def test_3d_batch_capped_at_five_percent_of_the_data():
    plan = make_plan(_fp(body_voxels=3 * 4096), _cfg(memory_mb=10 ** 6), "3d")
    assert plan["batch_size"] == 1          # 0.05 * 12288 / 4096 < 1


def test_25d_context_from_slab_and_spacing():
    plan = make_plan(_fp(spacing_mm=[1.0, 1.0, 2.5]), _cfg(), "2.5d")
    assert plan["context"] == 2              # round(4 mm / 2.5 mm)
    assert plan["in_channels"] == 5
    assert plan["patch_size"] == [64, 64]
    assert plan["batch_size"] == 8           # max_batch


def test_explicit_values_win_and_are_recorded():
    plan = make_plan(_fp(), _cfg(patch_size=[8, 8, 8], batch_size=3), "3d")
    assert plan["patch_size"] == [8, 8, 8] and plan["batch_size"] == 3
    assert plan["overridden"] == ["batch_size", "patch_size"]


@pytest.mark.parametrize("over, words", [
    ({"patch_size": [32, 16, 16]}, "larger than the dataset's volumes [16, 16, 16]"),
    ({"patch_size": [14, 16, 16]}, "multiple of 4"),
    ({"filters": [4, 8]}, "at least 3 stages"),
    ({"patch_size": [16, 16]}, "expected 3 numbers"),
    ({"spacing_mm": [-2.0, 2.0, 2.0]}, "must be positive"),
    ({"spacing_mm": [1.0, 1.0, 1.0]}, "the dataset is at [2.0, 2.0, 2.0] mm"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"memory_mb": -1}, "memory_mb"),
])
def test_bad_overrides_refused_with_one_line(over, words):
    with pytest.raises(UsageError) as err:
        make_plan(_fp(), _cfg(**over), "3d")
    assert words in str(err.value) and "\n" not in str(err.value)
