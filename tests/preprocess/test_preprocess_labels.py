"""Phantom tissue labels travel into the dataset, aligned with the MR; steps.any_contrast
writes a seeded label-drawn MR and leaves the CT and labels as they were."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file
from scipy import stats
from typer.testing import CliRunner

from medxlate.cli.main import app

ARGS = ["--skip", "register", "--set", "steps.resample.spacing_mm=[4,4,4]",
        "--set", "steps.slices.size=[64,64]", "--workers", "1", "--seed", "0", "--quiet"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from medxlate.phantom.cohort import generate_cohort
    from medxlate.phantom.subject import PhantomConfig

    root = tmp_path_factory.mktemp("labels") / "cohort"
    generate_cohort(root, 2, PhantomConfig(size=(48, 56, 44), ct_on_mr=False), seed=4)
    return root


def preprocess(cohort, out, *extra):
    res = CliRunner().invoke(app, ["preprocess", "--cohort", str(cohort), "--out", str(out),
                                   *ARGS, *extra])
    assert res.exit_code == 0, res.output
    return {p.stem: load_file(str(p)) for p in sorted((out / "shards").iterdir())}


@pytest.fixture(scope="module")
def plain(cohort, tmp_path_factory):
    return preprocess(cohort, tmp_path_factory.mktemp("plain") / "ds")


def test_labels_travel_and_follow_the_mr(cohort, plain):
    for sid, shard in plain.items():
        labels, mr, mask = shard["labels"], shard["mr"].astype(np.float32), shard["mask"]
        assert labels.dtype == np.int16 and labels.shape == mr.shape
        assert (labels[mask == 0] == 0).all()
        assert (labels[mask > 0] > 0).mean() > 0.95
        # oracle: the generator's own T1w signal per tissue (truth.json), ranked against the
        # median normalised MR of that label in the shard
        truth = json.loads((cohort / sid / "truth.json").read_text())
        names = truth["labels"]
        signal = truth["mr"]["tissue_signal"]["t1w"]
        present = [int(k) for k in names if int(k) > 0 and (labels == int(k)).sum() >= 30]
        rho = stats.spearmanr([signal[names[str(k)]] for k in present],
                              [np.median(mr[labels == k]) for k in present]).statistic
        assert len(present) >= 6 and rho > 0.8


def test_any_contrast_step(cohort, plain, tmp_path):
    drawn = preprocess(cohort, tmp_path / "a", "--set", "steps.any_contrast.enabled=true")
    again = preprocess(cohort, tmp_path / "b", "--set", "steps.any_contrast.enabled=true")
    other = preprocess(cohort, tmp_path / "c", "--set", "steps.any_contrast.enabled=true",
                       "--set", "steps.any_contrast.seed=1")
    for sid in plain:
        assert np.array_equal(drawn[sid]["ct"], plain[sid]["ct"])  # CT untouched
        assert np.array_equal(drawn[sid]["labels"], plain[sid]["labels"])
        assert not np.array_equal(drawn[sid]["mr"], plain[sid]["mr"])
        assert np.array_equal(drawn[sid]["mr"], again[sid]["mr"])  # seeded
        assert not np.array_equal(drawn[sid]["mr"], other[sid]["mr"])
    info = json.loads((tmp_path / "a" / "dataset.json").read_text())
    assert all("any_contrast" in s["steps_run"] for s in info["subjects"])


def test_any_contrast_without_labels_fails_the_subject(cohort, tmp_path):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(cohort, bare)
    for f in bare.glob("*/labels.nii.gz"):
        f.unlink()
    res = CliRunner().invoke(app, ["preprocess", "--cohort", str(bare), "--out",
                                   str(tmp_path / "o"), *ARGS,
                                   "--set", "steps.any_contrast.enabled=true"])
    assert res.exit_code in (3, 8) and "needs tissue labels" in res.output
