"""`medxlate preprocess` end to end on phantom cohorts with a known misalignment."""

import json
import os

import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.preprocess import load_dataset
from medxlate.intensity import denormalise_ct

SMALL = ["--set", "steps.resample.spacing_mm=[2,2,2]", "--set", "steps.slices.size=[128,128]"]
FLIP_LABEL = {"x": "180 deg about R (x)", "y": "180 deg about A (y)"}


def _cohort(root, n, flip, seed):
    from medxlate.phantom.cohort import generate_cohort
    from medxlate.phantom.subject import PhantomConfig

    config = PhantomConfig(region="brain", size=(96, 112, 80), spacing=(2.0, 2.0, 2.0), flip=flip)
    generate_cohort(root, n, config, seed=seed)
    return root / "cohort.csv"


@pytest.fixture(scope="module")
def flipped(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom_flip")
    csv = _cohort(root / "cohort", 2, flip=True, seed=3)
    out = root / "dataset"
    result = CliRunner().invoke(app, ["preprocess", "--cohort", str(csv), "-o", str(out), *SMALL])
    return root, csv, out, result


def test_flipped_cohort_tre_and_flip_found(flipped):
    root, _, out, result = flipped
    assert result.exit_code == 0, result.output
    info = json.loads((out / "dataset.json").read_text())
    medians = []
    for s in info["subjects"]:
        reg = s["registration"]
        truth = json.loads((root / "cohort" / s["id"] / "truth.json").read_text())
        assert reg["init_search"]["best"] == FLIP_LABEL[truth["transform"]["flip_axis"]]
        assert reg["tre_mm"]["n_points"] == 5000
        assert reg["tre_mm"]["median"] < 1.0
        assert reg["tre_mm"]["max"] < 2.0
        assert reg["mi_final"] > 2 * reg["mi_identity"]
        medians.append(reg["tre_mm"]["median"])
    assert np.median(medians) < 1.0
    assert "TRE median/max mm" in result.output or "TRE" in result.output


def test_dataset_contract(flipped):
    _, _, out, _ = flipped
    ds = load_dataset(out)
    info = ds.info
    assert info["format"] == "medxlate-dataset/1" and info["paired"] is True
    assert [s["name"] for s in info["steps"]] == ["read", "bias_correction", "register",
                                                  "resample", "mask", "crop", "normalise",
                                                  "slices", "contours", "volumes"]
    assert info["steps"][-1]["enabled"] is False  # 3D volumes only when asked for
    assert info["spacing_mm"] == [2.0, 2.0, 2.0] and info["slice_size"] == [128, 128]
    assert {s["split"] for s in info["subjects"]} <= {"train", "val", "test"}
    s = info["subjects"][0]
    assert len(s["inputs"]["mr"]["sha256"]) == 64 and s["inputs"]["mask"]["sha256"]
    shard = ds.shard(s["id"])
    n = s["shape"][2]
    for name, dtype in [("mr", np.float16), ("ct", np.float16), ("mask", np.uint8),
                        ("mr_edges", np.uint8), ("ct_edges", np.uint8)]:
        assert shard[name].shape == (n, 128, 128) and shard[name].dtype == dtype
    assert shard["keep"].shape == (n,) and shard["index"].tolist() == list(range(n))
    assert ds.shard_metadata(s["id"])["offset"] == s["offset"]
    # the shard holds the NIfTI volumes' values, normalised, at the recorded offset
    ct = load_nifti_array(ds.volume_path(s["id"], "ct"))
    mask = load_nifti_array(ds.volume_path(s["id"], "mask"))
    assert ct.shape == tuple(s["shape"])
    assert ct[mask == 0].max() == -1024.0
    k = int(np.argmax(shard["keep"] * shard["mask"].sum((1, 2))))
    oh, ow = s["offset"]
    h, w = ct.shape[0] // 2, ct.shape[1] // 2
    hu = denormalise_ct(shard["ct"][k, h + oh, w + ow], info["normalisation"])
    assert abs(float(hu) - float(np.clip(ct[h, w, k], -1024, 3000))) < 1.0
    # contours land on the CT bone edges: the boundary of bone (> 700 HU) is traced
    bone = np.asarray(shard["ct"][k], np.float32) > float(-1 + 2 * (700 + 1024) / 4024)
    edges = np.asarray(shard["ct_edges"][k]).astype(bool)
    from scipy import ndimage

    boundary = bone & ~ndimage.binary_erosion(bone)
    traced = boundary & ndimage.binary_dilation(edges, iterations=1)
    assert boundary.sum() > 50
    assert traced.sum() > 0.6 * boundary.sum()
    # the saved transform reads back and is rigid
    tfm = sitk.ReadTransform(str(out / "subjects" / s["id"] / "ct_to_mr.tfm"))
    matrix = np.asarray(tfm.GetNthTransform(0).GetMatrix() if tfm.GetName() ==
                        "CompositeTransform" else tfm.GetMatrix()).reshape(3, 3)
    np.testing.assert_allclose(matrix @ matrix.T, np.eye(3), atol=1e-6)


def load_nifti_array(path):
    from medxlate.io.nifti import read_nifti

    return read_nifti(path).array


def test_rerun_resumes_and_config_change_needs_overwrite(flipped):
    _, csv, out, _ = flipped
    shard = next((out / "shards").iterdir())
    before = os.stat(shard).st_mtime_ns
    again = CliRunner().invoke(app, ["preprocess", "--cohort", str(csv), "-o", str(out), *SMALL])
    assert again.exit_code == 0, again.output
    assert "2 subject(s) already done" in again.output
    assert os.stat(shard).st_mtime_ns == before
    changed = CliRunner().invoke(app, ["preprocess", "--cohort", str(csv), "-o", str(out),
                                       *SMALL, "--set", "steps.crop.margin_mm=3"])
    assert changed.exit_code == 4
    assert "different configuration" in changed.output


@pytest.mark.slow
def test_default_misalignment_cohort(tmp_path):
    csv = _cohort(tmp_path / "cohort", 3, flip=False, seed=11)
    out = tmp_path / "dataset"
    result = CliRunner().invoke(app, ["preprocess", "--cohort", str(csv), "-o", str(out), *SMALL,
                                      "--workers", "2"])
    assert result.exit_code == 0, result.output
    subjects = json.loads((out / "dataset.json").read_text())["subjects"]
    medians = [s["registration"]["tre_mm"]["median"] for s in subjects]
    assert np.median(medians) < 1.0 and max(medians) < 2.0
    assert all(s["registration"]["tre_mm"]["max"] < 2.0 for s in subjects)
    assert all(s["registration"]["init_search"]["best"] == "identity" for s in subjects)
