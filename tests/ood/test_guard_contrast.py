"""The contrast judged from intensities (issue 24: a T2 into a T1-only model, with no name or
DICOM tag saying so): the rim contrast of the depth profile against the training record's.

Oracles: hand-computed profiles and findings; the phantom generators' own contrast (what
each image *is*: T1w or T2w from the signal equations); the shipped unet-2.5d and
unet-2.5d-any records as `medxlate info` shows them (contrasts ["t1"] and ["any"]).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.io.nifti import write_nifti
from medxlate.ood.check import RIM_MARGIN, check_summary, rim_contrast
from medxlate.ood.summary import summarise
from medxlate.phantom.subject import PhantomConfig, make_subject
from medxlate.weights import read_meta, weights_dir
from tests.conftest import SHARED_DATA

MAPS = Path(os.environ.get("MEDXLATE_LABEL_MAPS", SHARED_DATA / "synthseg-head-labels"))
runner = CliRunner()
T1_REC = {"modality": "MR", "contrasts": ["t1"],
          "profile": {"mean": [0.0, -0.3, -0.4, -0.35, -0.35], "max_distance": 0.5}}


def shipped(name: str) -> dict:
    return read_meta(weights_dir() / f"{name}-demo.safetensors").data["inputs"]


@pytest.fixture(scope="module")
def head_2mm():
    """Held-out procedural head (cohort seed 7, subject 0; unet-2.5d trained on seed 2026) at
    2 mm, T1w and T2w from the same anatomy."""
    return make_subject(PhantomConfig(spacing=(2.0, 2.0, 2.0), contrasts=("t1w", "t2w"),
                                      ct_on_mr=False), 7, 0)


def test_rim_contrast_by_hand():
    assert rim_contrast([0.1, -0.2, None, 0.05, -0.4]) == pytest.approx(0.05)
    assert rim_contrast([-0.5, -0.1, 0.2, None, None]) == pytest.approx(-0.7)
    assert rim_contrast([0.3, None, None, None, None]) is None
    assert rim_contrast([None, 0.1, 0.2]) is None and rim_contrast(None) is None


def test_reversed_rim_is_flagged_with_its_value():
    found = check_summary({"shape": [9, 9, 9], "spacing_mm": [2, 2, 2],
                           "intensity": {"min": 0.0, "max": 1.0, "negative_fraction": 0.0,
                                         "air_fraction": 0.0, "bone_fraction": 0.0},
                           "profile": [-0.6, -0.4, 0.1, -0.2, -0.1]}, "MR", T1_REC)
    assert [f["check"] for f in found] == ["contrast"]
    assert found[0]["value"] == pytest.approx(-0.7) and found[0]["limit"] == -RIM_MARGIN
    msg = found[0]["message"]
    assert msg.startswith("looks T2-weighted from its intensities")
    assert "0.70 darker than a deeper layer" in msg and "0.30 brighter than any" in msg
    assert msg.endswith("trained on t1 only")


@pytest.mark.parametrize("profile, record, expect", [
    ([-0.34, -0.3, -0.5, -0.6, -0.6], T1_REC, []),            # rim -0.04: inside the margin
    ([0.2, -0.3, -0.5, -0.6, -0.6], T1_REC, []),              # T1-like rim
    ([-0.6, -0.4, 0.1, -0.2, -0.1], {**T1_REC, "contrasts": ["any"]}, []),
    ([-0.6, -0.4, 0.1, -0.2, -0.1], {**T1_REC, "contrasts": ["t1", "t2"]}, []),  # mixed
    ([-0.6, -0.4, 0.1, -0.2, -0.1], {**T1_REC, "contrasts": []}, []),        # unnamed
    ([-0.6, -0.4, 0.1, -0.2, -0.1], {**T1_REC, "contrasts": ["mr"]}, []),
    ([-0.6, -0.4, 0.1, -0.2, -0.1],                            # record rim +0.04: no direction
     {**T1_REC, "profile": {"mean": [-0.26, -0.3, -0.4, -0.35, -0.35], "max_distance": 9}},
     []),
    ([0.3, -0.3, -0.5, -0.6, -0.6],                            # a T2-only model, T1-like input
     {"modality": "MR", "contrasts": ["t2"],
      "profile": {"mean": [-0.6, -0.4, 0.1, -0.2, -0.1], "max_distance": 9}},
     ["contrast"]),
])
def test_rim_rule(profile, record, expect):
    summary = {"shape": [9, 9, 9], "spacing_mm": [2, 2, 2], "profile": profile,
               "intensity": {"min": 0.0, "max": 1.0, "negative_fraction": 0.0,
                             "air_fraction": 0.0, "bone_fraction": 0.0}}
    found = check_summary(summary, "MR", record)
    assert [f["check"] for f in found] == expect
    if expect:
        assert found[0]["message"].startswith("looks T1-weighted")
        assert found[0]["value"] == pytest.approx(0.6) and found[0]["limit"] == RIM_MARGIN


def test_shipped_t1_record_tells_t2_from_t1(head_2mm):
    record = shipped("unet-2.5d")
    assert record["contrasts"] == ["t1"]
    t1 = check_summary(summarise(head_2mm.mr["t1w"], "MR"), "MR", record, [2, 2, 2])
    t2 = check_summary(summarise(head_2mm.mr["t2w"], "MR"), "MR", record, [2, 2, 2])
    assert t1 == []
    # the distance to the training mean alone lets this T2 through (its training cohort mixes
    # procedural and real-anatomy heads: a wide spread); the rim does not
    assert [f["check"] for f in t2] == ["contrast"]
    assert t2[0]["value"] < -RIM_MARGIN and "looks T2-weighted" in t2[0]["message"]
    anyc = shipped("unet-2.5d-any")
    assert anyc["contrasts"] == ["any"]
    assert check_summary(summarise(head_2mm.mr["t2w"], "MR"), "MR", anyc, [2, 2, 2]) == []


def test_skull_stripped_t1_is_a_region_finding_not_a_contrast(head_2mm):
    """Brain tissue only (the phantom's own labels): the rim is cortex and CSF, darker than
    white matter, but the image is a T1w; the body is what is off."""
    from medxlate.io.volume import Volume
    from medxlate.phantom.tissues import TISSUES

    names = [t.name for t in TISSUES]
    brain = np.isin(head_2mm.labels.array.astype(int),
                    [names.index(n) for n in ("csf", "grey_matter", "white_matter",
                                              "deep_grey")])
    t1 = head_2mm.mr["t1w"]
    stripped = Volume(np.where(brain, t1.array, 0).astype(np.float32), t1.affine, "MR")
    summary = summarise(stripped, "MR")
    assert rim_contrast(summary["profile"]) < -RIM_MARGIN  # the rule alone would misjudge it
    found = check_summary(summary, "MR", shipped("unet-2.5d"), [2, 2, 2])
    assert [f["check"] for f in found][:1] == ["region"]
    assert "contrast" not in [f["check"] for f in found]
    assert "smaller than the smallest training body" in found[0]["message"]


@pytest.mark.skipif(not MAPS.is_dir(), reason=f"no label maps at {MAPS}")
def test_real_anatomy_held_out_head():
    from medxlate.phantom.label_subject import LabelPhantomConfig, make_label_subject

    cfg = LabelPhantomConfig(labels=MAPS, split="held-out", contrasts=("t1w", "t2w"),
                             spacing=(2.0, 2.0, 2.0), ct_on_mr=False)
    head = make_label_subject(cfg, 2030, 0)  # map 17, never used in training
    record = shipped("unet-2.5d")
    assert check_summary(summarise(head.mr["t1w"], "MR"), "MR", record, [2, 2, 2]) == []
    t2 = check_summary(summarise(head.mr["t2w"], "MR"), "MR", record, [2, 2, 2])
    assert [f["check"] for f in t2] == ["contrast"]


def _synthesize(src: Path, out: Path, *extra: str):
    return runner.invoke(app, ["synthesize", "--quiet", "--model", "unet-2.5d", "--in",
                               str(src), "--out", str(out), *extra])


def test_neutral_named_t2_into_unet_2_5d(tmp_path, head_2mm):
    folder = tmp_path / "in"
    folder.mkdir()
    t2, t1 = folder / "x.nii.gz", folder / "y.nii.gz"  # no contrast in the names
    write_nifti(head_2mm.mr["t2w"], t2)
    write_nifti(head_2mm.mr["t1w"], t1)
    strict = _synthesize(t2, tmp_path / "o.nii.gz", "--strict-inputs")
    assert strict.exit_code == 7, strict.output  # docs/input-guard.md, Exit codes
    assert "x.nii.gz: outside what unet-2.5d was trained on: looks T2-weighted" in strict.stderr
    assert "Traceback" not in strict.stderr and not (tmp_path / "o.nii.gz").exists()
    res = _synthesize(folder, tmp_path / "out", "--strict-inputs",
                      "--report", str(tmp_path / "r.json"))
    assert res.exit_code == 8, res.output  # the T1 was written, the T2 failed
    cases = {c["id"]: c for c in json.loads((tmp_path / "r.json").read_text())["cases"]}
    assert cases["x"]["exit_code"] == 7
    assert [f["check"] for f in cases["x"]["input_warnings"]] == ["contrast"]
    assert cases["y"]["status"] == "ok" and "input_warnings" not in cases["y"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["y_sct.nii.gz"]
