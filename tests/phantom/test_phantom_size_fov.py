"""Issue 10: `phantom --size` alone keeps the region's field of view (coarser grid, whole head)
instead of cropping the middle of the head at the drawn ~1 mm spacing."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.phantom import PhantomConfig, make_subject

# The head field of view (mm) from medxlate/phantom/head.py, written out here as the oracle.
HEAD_FOV_MM = (192.0, 228.0, 176.0)


def test_size_alone_sets_spacing_from_the_field_of_view():
    s = make_subject(PhantomConfig("brain", size=(64, 64, 32)), 0, 0)
    assert s.mask.shape == (64, 64, 32)
    extent = np.asarray(s.mask.spacing) * np.asarray(s.mask.shape)
    np.testing.assert_allclose(extent, HEAD_FOV_MM, atol=0.1)
    labels = s.labels.array != 0
    # The whole head fits: almost nothing of it on the left/right/front/back faces (the old
    # 64 mm window at ~1 mm spacing was all head, every face covered).
    lateral = np.concatenate([labels[0].ravel(), labels[-1].ravel(), labels[:, 0].ravel(),
                              labels[:, -1].ravel()])
    assert lateral.mean() < 0.05
    assert 0.2 < labels.mean() < 0.7


def test_explicit_spacing_still_wins():
    s = make_subject(PhantomConfig("brain", size=(40, 48, 36), spacing=(4.0, 4.0, 4.0)), 0, 0)
    assert s.mask.spacing == pytest.approx((4.0, 4.0, 4.0))


def test_cli_size_keeps_field_of_view(tmp_path):
    res = CliRunner().invoke(app, ["phantom", "--out", str(tmp_path / "c"), "--size", "32", "32",
                                   "16", "--quiet"])
    assert res.exit_code == 0, res.output
    zooms = nib.load(tmp_path / "c" / "brain-000" / "mr.nii.gz").header.get_zooms()
    assert zooms == pytest.approx((192 / 32, 228 / 32, 176 / 16))
