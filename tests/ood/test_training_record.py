"""`medxlate train` records what its model was trained on (data["inputs"] of the weights)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.ood.from_dataset import dataset_record
from medxlate.ood.summary import summarise
from medxlate.preprocess.dataset import Dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from medxlate.phantom.cohort import generate_cohort
    from medxlate.phantom.subject import PhantomConfig

    root = tmp_path_factory.mktemp("rec")
    generate_cohort(root / "cohort", 3, PhantomConfig(size=(48, 56, 44), ct_on_mr=False), seed=9)
    res = CliRunner().invoke(app, [
        "preprocess", "--cohort", str(root / "cohort"), "--out", str(root / "ds"), "--skip",
        "register", "--set", "steps.resample.spacing_mm=[4,4,4]", "--set",
        "steps.slices.size=[64,64]", "--set", "split.fractions=[1,0,0]", "--quiet"])
    assert res.exit_code == 0, res.output
    return Dataset(root / "ds"), root / "cohort"


def test_record_of_a_t1_model(dataset):
    ds, cohort = dataset
    cfg = {"pairing": "paired", "direction": "mri2ct", "source": "t1", "augment": {}}
    record = dataset_record(ds, cfg)
    assert record["contrasts"] == ["t1"] and record["subjects"] == 3
    assert record["modality"] == "MR" and record["working_spacing_mm"] == [4.0, 4.0, 4.0]
    assert "3 raw inputs" not in record["source"] and "raw inputs" in record["source"]
    # the body range holds each training input's own body volume (summarised independently)
    from medxlate.io.readers import read_volume

    vols = [summarise(read_volume(cohort / f"brain-00{i}" / "mr.nii.gz", modality="MR"),
                      "MR")["body"]["volume_ml"] for i in range(3)]
    assert record["body"]["volume_ml"] == [round(min(vols), 1), round(max(vols), 1)]


def test_record_of_an_any_contrast_model(dataset):
    ds, _ = dataset
    cfg = {"pairing": "paired", "direction": "mri2ct", "source": "t1",
           "augment": {"profile": "any-contrast"}}
    record = dataset_record(ds, cfg)
    assert record["contrasts"] == ["any"] and "quantiles" not in record
    assert "profile" not in record and record["body"]
    assert record["input_spacing_mm"]["max"] == [6.0, 6.0, 6.0]  # ac_slice_mm's default max


def test_ct_source_and_unconditional(dataset):
    ds, _ = dataset
    ct = dataset_record(ds, {"pairing": "paired", "direction": "ct2mri", "augment": {}})
    assert ct["modality"] == "CT" and ct["contrasts"] == []
    none = dataset_record(ds, {"pairing": "unconditional", "direction": "mri2ct",
                               "augment": {}})
    assert none["modality"] == "none"


def test_spread_sample_covers_the_whole_list():
    from medxlate.ood.from_dataset import spread_sample

    assert spread_sample(list(range(10)), 4) == [0, 3, 6, 9]
    assert spread_sample(list("abcdefg"), 3) == ["a", "d", "g"]
    assert spread_sample([1, 2], 5) == [1, 2]
    # two cohorts one after the other (28 + 29 subjects), 32 summarised: both represented
    ids = [f"brain-{i:03d}" for i in range(28)] + [f"head-{i:03d}" for i in range(29)]
    picked = spread_sample(ids, 32)
    assert len(picked) == len(set(picked)) == 32
    assert sum(p.startswith("head") for p in picked) == 16
