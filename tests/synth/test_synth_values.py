"""Values and sides: with an identity generator the output is predictable voxel by voxel."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.io.readers import read_volume
from medxlate.preprocess.mask import body_mask
from medxlate.intensity import DEFAULT_NORMALISATION, denormalise_ct, normalise
from tests.synth.conftest import TRAIN_SPACING, make_checkpoint, phantom_mr, write_nifti
from tests.synth.test_synth_geometry import oblique_flipped_affine

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["synthesize", "--model", "pix2pix", "--quiet", *args])


def expected_hu(vol) -> tuple[np.ndarray, np.ndarray]:
    mask = body_mask(vol, "MR")
    x, _ = normalise(vol.array, "MR", DEFAULT_NORMALISATION, mask=mask)
    return denormalise_ct(x, DEFAULT_NORMALISATION), mask


@pytest.mark.parametrize("context", [0, 2])
def test_identity_model_gives_exact_hu_through_tiles(tmp_path, identity_generator, context):
    # Training spacing = input spacing: no resampling; 40x36 > 32x32 slices: tiled; a 2.5D
    # checkpoint gets 5-slice stacks whose centre is the slice being translated.
    p2p_weights = make_checkpoint(tmp_path / "w.safetensors", context=context)
    aff = np.diag([*TRAIN_SPACING, 1.0])
    src = write_nifti(tmp_path / "mr.nii.gz", phantom_mr(), aff)
    res = run("--weights", str(p2p_weights), "--in", str(src), "--out",
              str(tmp_path / "sct.nii.gz"))
    assert res.exit_code == 0, res.output
    out = read_volume(tmp_path / "sct.nii.gz").array
    want, mask = expected_hu(read_volume(src))
    np.testing.assert_allclose(out[mask], want[mask], atol=0.05)
    assert (out[~mask] == -1024.0).all()
    # the bright block (900) lies near the top of the MR window, the body (400) mid-window
    assert out[10, 18, 5] > 2800.0 and 0.0 < out[16, 10, 5] < 1500.0


def test_left_right_asymmetry_stays_on_the_same_side(tmp_path, p2p_weights,
                                                      identity_generator):
    # Stored with axes flipped and rotated: a flip anywhere would move the block to the right.
    aff = oblique_flipped_affine()
    src_arr = phantom_mr((40, 36, 8))
    src = write_nifti(tmp_path / "mr.nii.gz", src_arr, aff)
    res = run("--weights", str(p2p_weights), "--in", str(src), "--out",
              str(tmp_path / "sct.nii.gz"))
    assert res.exit_code == 0, res.output
    out = np.asarray(nib.load(str(tmp_path / "sct.nii.gz")).dataobj)
    bright_in = np.argwhere(src_arr > 800)
    bright_out = np.argwhere(out > 2000)
    # the bright voxels are the same voxels of the stored arrays...
    assert len(bright_out) > 0
    assert {tuple(v) for v in bright_out} <= {tuple(v) for v in np.argwhere(src_arr > 500)}
    # ...and, in world coordinates, on the patient's left for both (RAS x < body centre x)
    world_in = (aff[:3, :3] @ bright_in.T).T + aff[:3, 3]
    world_out = (aff[:3, :3] @ bright_out.T).T + aff[:3, 3]
    body = np.argwhere(src_arr > 100)
    centre_x = ((aff[:3, :3] @ body.T).T + aff[:3, 3])[:, 0].mean()
    assert world_in[:, 0].mean() > centre_x  # array index 0 runs R->L: low index = Right
    assert abs(world_out[:, 0].mean() - world_in[:, 0].mean()) < 2.0


def test_no_mask_keeps_model_output_outside_the_body(tmp_path, p2p_weights,
                                                     identity_generator):
    arr = phantom_mr()
    arr[1:4, 1:4, :] = 950.0  # a small bright object detached from the body (not in the mask)
    src = write_nifti(tmp_path / "mr.nii.gz", arr, np.diag([*TRAIN_SPACING, 1.0]))
    masked = run("--weights", str(p2p_weights), "--in", str(src), "--out",
                 str(tmp_path / "masked.nii.gz"))
    free = run("--weights", str(p2p_weights), "--in", str(src), "--out",
               str(tmp_path / "free.nii.gz"), "--no-mask")
    assert masked.exit_code == 0 and free.exit_code == 0, masked.output + free.output
    m = read_volume(tmp_path / "masked.nii.gz").array
    f = read_volume(tmp_path / "free.nii.gz").array
    assert (m[1:4, 1:4, :] == -1024.0).all()
    assert (f[1:4, 1:4, :] == 3000.0).all()  # above the MR window: the top of the CT one
    # inside the body both agree
    assert np.allclose(m[16, 18, :], f[16, 18, :], atol=0.05)
