"""synthesize keeps the input's exact geometry (affine within 1e-4 mm, same shape)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.io.readers import read_volume
from tests.synth.conftest import phantom_mr, write_nifti

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["synthesize", "--model", "pix2pix", "--quiet", *args])


def oblique_flipped_affine() -> np.ndarray:
    """Voxel axes stored L->R reversed, P->A reversed, 12 degrees about z, 1.1x0.9x3 mm."""
    t = np.deg2rad(12.0)
    rot = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([-1.1, -0.9, 3.0])
    aff[:3, 3] = [30.5, 12.25, -40.0]
    return aff


def test_nifti_output_has_input_geometry_after_resampling(tmp_path, p2p_weights):
    aff = np.diag([1.0, 1.25, 2.5, 1.0])
    aff[:3, 3] = [-20.0, 5.0, 7.5]
    src = write_nifti(tmp_path / "mr.nii.gz", phantom_mr(), aff)
    res = run("--weights", str(p2p_weights), "--in", str(src), "--out", str(tmp_path / "o"))
    assert res.exit_code == 0, res.output
    out = nib.load(str(tmp_path / "o" / "mr_sct.nii.gz"))
    assert out.shape == (40, 36, 10)
    np.testing.assert_allclose(out.affine, aff, atol=1e-4, rtol=0)
    data = np.asarray(out.dataobj)
    assert data.dtype == np.float32 and np.isfinite(data).all()
    assert data.min() >= -1024.0 and data.max() <= 3000.0


def test_flipped_oblique_nifti_keeps_its_own_axis_order(tmp_path, p2p_weights):
    aff = oblique_flipped_affine()
    src = write_nifti(tmp_path / "obl.nii", phantom_mr((36, 40, 8)), aff)
    res = run("--weights", str(p2p_weights), "--in", str(src), "--out",
              str(tmp_path / "sct.nii.gz"))
    assert res.exit_code == 0, res.output
    out = nib.load(str(tmp_path / "sct.nii.gz"))
    assert out.shape == (36, 40, 8)
    np.testing.assert_allclose(out.affine, aff, atol=1e-4, rtol=0)
    np.testing.assert_allclose(out.header.get_qform(), aff, atol=1e-4, rtol=0)
    assert read_volume(tmp_path / "sct.nii.gz").same_grid(read_volume(src))


def test_mha_output_has_input_geometry(tmp_path, p2p_weights):
    aff = oblique_flipped_affine()
    src = write_nifti(tmp_path / "mr.nii.gz", phantom_mr((36, 40, 8)), aff)
    res = run("--weights", str(p2p_weights), "--in", str(src), "--out", str(tmp_path / "o"),
              "--out-format", "mha")
    assert res.exit_code == 0, res.output
    out = read_volume(tmp_path / "o" / "mr_sct.mha")
    assert out.same_grid(read_volume(src), atol_mm=1e-4)
