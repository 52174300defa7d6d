"""augment.profile=any-contrast in training samples: seeded, labels followed, CT untouched."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from medxlate.errors import UsageError
from medxlate.preprocess.dataset import Dataset
from medxlate.train.config import ENGINE_DEFAULTS
from medxlate.train.data import SliceData
from tests.train.conftest import make_dataset


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """The tiny engine dataset, each shard given labels: 1 body, 2 the bright disc."""
    root = make_dataset(tmp_path_factory.mktemp("ds") / "DATASET", size=32, n_slices=8)
    for shard in (root / "shards").iterdir():
        arrays = load_file(str(shard))
        labels = np.where(arrays["mask"] > 0, 1, 0).astype(np.int16)
        labels[arrays["mr"] > 0.5] = 2
        save_file({**arrays, "labels": labels}, str(shard), metadata={"offset": "[0, 0]"})
    return root


def config(profile: str, **augment) -> dict:
    return {"context": 1, "pairing": "paired", "direction": "mri2ct", "slice_size": None,
            "augment": {**ENGINE_DEFAULTS["augment"], "profile": profile, **augment}}


def test_seeded_and_different_per_seed(labelled):
    data = SliceData(Dataset(labelled), "train", config("any-contrast"))
    a, b, c = data[(3, 3, 11)], data[(3, 3, 11)], data[(3, 3, 12)]
    assert np.array_equal(a["mr"].numpy(), b["mr"].numpy())
    assert not np.allclose(a["mr"].numpy(), c["mr"].numpy())
    assert "labels" not in a and set(a) == {"mr", "ct", "mask", "mr_edges", "ct_edges"}
    assert a["mr"].shape == (3, 32, 32) and a["mr"].min() >= -1 and a["mr"].max() <= 1


def test_ct_untouched_and_mr_replaced(labelled):
    plain = SliceData(Dataset(labelled), "train", config("none"))
    drawn = SliceData(Dataset(labelled), "train", config("any-contrast"))
    for i in range(len(plain)):
        p, d = plain[(i, i, i)], drawn[(i, i, i)]
        assert np.array_equal(p["ct"].numpy(), d["ct"].numpy())  # bit for bit
        assert np.array_equal(p["mask"].numpy(), d["mask"].numpy())
        assert not np.array_equal(p["mr"].numpy(), d["mr"].numpy())


def test_ac_p_mixes_drawn_and_dataset_mr(labelled):
    """ac_p 0: every sample keeps the dataset's MR (the oracle: the profile off); ac_p 0.5:
    some samples keep it and some are drawn, the CT bit for bit the same in all."""
    plain = SliceData(Dataset(labelled), "train", config("none"))
    never = SliceData(Dataset(labelled), "train", config("any-contrast", ac_p=0.0))
    half = SliceData(Dataset(labelled), "train", config("any-contrast", ac_p=0.5))
    kept = drawn = 0
    for i in range(len(plain)):
        for seed in range(6):
            p, n, h = plain[(i, i, seed)], never[(i, i, seed)], half[(i, i, seed)]
            assert np.array_equal(p["mr"].numpy(), n["mr"].numpy())
            assert np.array_equal(p["ct"].numpy(), h["ct"].numpy())
            same = np.array_equal(p["mr"].numpy(), h["mr"].numpy())
            kept, drawn = kept + same, drawn + (not same)
    assert kept > 0 and drawn > 0


def test_drawn_mr_follows_the_labels(labelled):
    data = SliceData(Dataset(labelled), "train", config(
        "any-contrast", ac_slice_mm=[0.5, 0.5], ac_bias=0.0, ac_noise=0.0, ac_gamma=0.0,
        ac_spread=0.0))
    shard = load_file(str(labelled / "shards" / "sub-000.safetensors"))
    for i, (sid, n) in enumerate(data.mr_centres):
        if sid != "sub-000":
            continue
        mr = data[(i, i, 5)]["mr"].numpy()[1]  # the centre slice
        lab = shard["labels"][n]
        assert (mr[lab == 0] == -1.0).all()  # no signal outside the body
        from scipy import ndimage

        idx = np.clip(np.arange(n - 3, n + 4), 0, len(shard["labels"]) - 1)
        stack = shard["labels"][idx]  # the blur (<= 1 voxel, 3 sigma) mixes slices too
        for t in (1, 2):  # one value per tissue away from its edges, in 3D
            inner = ndimage.binary_erosion(stack == t, iterations=3, border_value=1)[3]
            if inner.sum() > 4:
                assert mr[inner].std() < 0.02


def test_validation_keeps_the_dataset_mr(labelled):
    plain = SliceData(Dataset(labelled), "val", config("none"), augment=False)
    drawn = SliceData(Dataset(labelled), "val", config("any-contrast"), augment=False)
    assert np.array_equal(plain[(0, 0, 0)]["mr"].numpy(), drawn[(0, 0, 0)]["mr"].numpy())


def test_a_dataset_without_labels_is_refused(tmp_path):
    root = make_dataset(tmp_path / "DATASET")
    with pytest.raises(UsageError, match="needs tissue labels"):
        SliceData(Dataset(root), "train", config("any-contrast"))


def test_unknown_profile_is_refused_by_the_config():
    from medxlate.models.registry import get_spec
    from medxlate.train.config import resolve_config

    with pytest.raises(UsageError, match="augment.profile='t2-only'"):
        resolve_config(get_spec("pix2pix"), "demo", {"augment": {"profile": "t2-only"}})


@pytest.mark.parametrize("bad", [{"profile": "t2-only"}, {"ac_slice_mm": [3, 1]},
                                 {"ac_noise": -0.1}, {"ac_p": 1.5}, {"ac_p": -0.1},
                                 {"ac_p": "abc"}, {"ac_bias": "x"}, {"ac_slice_mm": 3}])
def test_bad_options(bad):
    from medxlate.train.any_contrast import check_profile

    with pytest.raises(UsageError):
        check_profile({**ENGINE_DEFAULTS["augment"], **bad})


def test_train_cli_accepts_the_profile(labelled, tmp_path):
    from typer.testing import CliRunner

    from medxlate.cli.main import app

    res = CliRunner().invoke(app, [
        "train", "--model", "pix2pix", "--data", str(labelled), "--out", str(tmp_path / "r"),
        "--config", "demo", "--device", "cpu", "--seed", "0", "--steps", "2", "--quiet",
        "--set", "augment.profile=any-contrast", "--set", "slice_size=[32,32]",
        "--set", "ngf=4", "--set", "ndf=4", "--set", "n_downs=5", "--set", "batch_size=2",
        "--set", "val_every=0"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["augment"]["profile"] == "any-contrast"
