"""Units of the synthesis pipeline: grids, orientation, tiling, inputs, devices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medxlate.errors import InputError, UsageError
from medxlate.io.volume import Volume
from medxlate.synth.device import resolve_device
from medxlate.synth.grid import onto_grid, restore_orientation, to_spacing, working_grid
from medxlate.synth.inputs import collect_inputs, output_format, unique_stems
from medxlate.synth.slicer import SlicePlan, body_box, tile_starts


def ramp_volume(shape, affine) -> Volume:
    """Values = world x + 2 world y - z (mm): linear, so linear resampling is exact."""
    vol = Volume(np.zeros(shape, np.float32), affine)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    w = vol.world(ijk)
    return vol.with_array((w[..., 0] + 2 * w[..., 1] - w[..., 2]).astype(np.float32))


def test_working_grid_keeps_origin_and_directions():
    aff = np.diag([0.5, 0.5, 2.5, 1.0])
    aff[:3, 3] = [-10, 4, 30]
    vol = Volume(np.zeros((101, 80, 12), np.float32), aff)
    w_aff, shape = working_grid(vol, [1.5, 1.5, 2.0])
    assert shape == (34, 27, 14)  # extents 50, 39.5, 27.5 mm
    np.testing.assert_allclose(w_aff, np.diag([1.5, 1.5, 2.0, 1.0]) + np.pad(
        np.array([[-10], [4], [30]]), ((0, 1), (3, 0))), atol=1e-12)


def test_resampling_a_linear_field_is_exact_both_ways():
    aff = np.diag([0.5, 0.7, 2.5, 1.0])
    aff[:3, 3] = [3, -2, 8]
    vol = ramp_volume((41, 30, 9), aff)
    work = to_spacing(vol, [1.5, 1.5, 2.0])
    np.testing.assert_allclose(work.array, ramp_volume(work.shape, work.affine).array,
                               atol=1e-3)
    back = onto_grid(work.array, work.affine, vol)
    # inside the working grid's extent the round trip is exact; beyond its last voxel
    # (less than one working voxel) values are clamped
    inside = tuple(slice(0, int(np.floor((n - 1) * ws / s)) + 1) for n, ws, s in
                   zip(work.shape, work.spacing, vol.spacing, strict=True))
    np.testing.assert_allclose(back[inside], vol.array[inside], atol=1e-3)
    assert to_spacing(vol, vol.spacing) is vol


def test_restore_orientation_round_trip():
    aff = np.array([[0, 0, -2.0, 50], [-1.0, 0, 0, 20], [0, 1.5, 0, -30], [0, 0, 0, 1]])
    raw = Volume(np.arange(24, dtype=np.float32).reshape(2, 3, 4), aff)
    canon = raw.canonical()
    assert canon.orientation == "RAS" and canon.shape == (4, 2, 3)
    back = restore_orientation(canon, aff)
    np.testing.assert_array_equal(back.array, raw.array)
    np.testing.assert_allclose(back.affine, aff)


@pytest.mark.parametrize("context", [0, 2])
def test_tiles_reassemble_the_volume_exactly(context):
    rng = np.random.default_rng(0)
    vol = rng.normal(size=(5, 70, 45)).astype(np.float32)
    plan = SlicePlan(vol.shape, (32, 32), context=context)
    assert len(plan.tiles) == 5 * 4 * 2  # tiles overlap by half: 4 x 2 per slice
    total, weights = np.zeros_like(vol), np.zeros_like(vol)
    for start in range(0, len(plan.tiles), 7):
        tiles = plan.tiles[start:start + 7]
        batch = plan.batch(vol, tiles, -1.0)
        assert batch.shape == (len(tiles), 2 * context + 1, 32, 32)
        plan.accumulate(total, weights, tiles, batch[:, context])
    assert (weights > 0).all()
    np.testing.assert_allclose(total / weights, vol, atol=1e-5)


def test_tile_starts_and_body_box():
    assert tile_starts(0, 20, 32) == [-6]
    starts = tile_starts(0, 100, 32)
    assert starts[0] == 0 and starts[-1] == 68 and np.all(np.diff(starts) <= 24)
    mask = np.zeros((6, 50, 60), bool)
    mask[2:4, 10:20, 30:35] = True
    box, slices = body_box(mask, margin=2)
    assert box == ((8, 22), (28, 37)) and slices == [1, 2, 3, 4]


def test_context_slices_are_clamped_at_the_ends():
    vol = np.arange(4, dtype=np.float32)[:, None, None] * np.ones((4, 8, 8), np.float32)
    plan = SlicePlan(vol.shape, (8, 8), context=2)
    first = plan.batch(vol, [plan.tiles[0]], -1.0)[0, :, 0, 0]
    last = plan.batch(vol, [plan.tiles[-1]], -1.0)[0, :, 0, 0]
    assert first.tolist() == [0, 0, 0, 1, 2] and last.tolist() == [1, 2, 3, 3, 3]


def test_inputs_folder_list_and_names(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "mr.nii.gz").write_bytes(b"x")
    paths = [tmp_path / "b" / "mr.nii.gz", tmp_path / "a" / "mr.nii.gz"]
    assert unique_stems(paths) == ["b_mr", "a_mr"]
    listing = tmp_path / "list.txt"
    listing.write_text("# cohort\nb/mr.nii.gz\n\na/mr.nii.gz\n")
    found, cohort = collect_inputs(listing)
    assert cohort and found == sorted(paths, key=str)
    series = tmp_path / "series"
    series.mkdir()
    (series / "IM0001").write_bytes(b"x")
    assert collect_inputs(series) == ([series], False)
    assert collect_inputs(tmp_path / "a") == ([tmp_path / "a" / "mr.nii.gz"], True)
    with pytest.raises(InputError):
        collect_inputs(tmp_path / "missing")
    assert output_format(Path("x.nii.gz"), None, False) == "nifti"
    assert output_format(Path("out"), "dicom", True) == "dicom"
    with pytest.raises(UsageError):
        output_format(Path("x.nii.gz"), "dicom", False)
    with pytest.raises(UsageError):
        output_format(Path("x.mha"), None, True)


def test_device_resolution():
    import torch

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(UsageError):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA"):
            resolve_device("cuda:0")
