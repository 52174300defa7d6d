"""The guard's findings on the bad inputs of issue 24, judged from summaries (no model).

Oracles: the phantom generator's own contrast, region and modality (what each image *is*),
hand-built arrays with known answers, and DICOM echo/repetition times of textbook sequences.
"""

from __future__ import annotations

import numpy as np
import pytest

from medxlate.io.volume import Volume
from medxlate.ood.check import check_summary, mr_contrast_from_tags
from medxlate.ood.summary import body_size, intensity_evidence, summarise
from medxlate.phantom.subject import PhantomConfig, make_subject


def checks(findings) -> list[str]:
    return [f["check"] for f in findings]


def test_held_out_t1_heads_pass(heads, t1_record):
    for h in heads[4:]:
        assert check_summary(summarise(h.mr["t1w"], "MR"), "MR", t1_record, [2, 2, 2]) == []


def test_t2_into_a_t1_only_model(heads, t1_record):
    for h in heads[4:]:
        found = check_summary(summarise(h.mr["t2w"], "MR"), "MR", t1_record, [2, 2, 2])
        assert checks(found) == ["contrast", "intensity"]
        assert found[0]["value"] < found[0]["limit"] < 0  # the rim: darker than inside
        assert found[0]["message"].startswith("looks T2-weighted from its intensities")
        assert found[1]["value"] > found[1]["limit"]
        assert "another contrast" in found[1]["message"]


def test_an_any_contrast_record_takes_t2(heads, t1_record):
    record = {**t1_record, "contrasts": ["any"]}
    record.pop("profile"), record.pop("quantiles")
    assert check_summary(summarise(heads[4].mr["t2w"], "MR"), "MR", record, [2, 2, 2]) == []


def test_ct_as_mr(heads, t1_record):
    found = check_summary(summarise(heads[4].ct, "MR"), "MR", t1_record, [2, 2, 2])
    assert checks(found) == ["modality"]
    assert "looks like a CT" in found[0]["message"]


def test_mr_as_ct(heads):
    found = check_summary(summarise(heads[4].mr["t1w"], "CT"), "CT", None, [4, 4, 4])
    assert checks(found) == ["modality"] and "looks like an MR" in found[0]["message"]


def test_pelvis_into_a_brain_model(t1_record):
    pelvis = make_subject(PhantomConfig(region="pelvis", size=(64, 48, 36), ct_on_mr=False),
                          5, 0)
    found = check_summary(summarise(pelvis.mr["t1w"], "MR"), "MR", t1_record, [2, 2, 2])
    region = [f for f in found if f["check"] == "region"]
    assert region and "region brain" in region[0]["message"]
    assert region[0]["value"] > 1.5 * t1_record["body"]["volume_ml"][1]


@pytest.mark.parametrize("value", [0.0, 137.0])
def test_constant_volume(value, t1_record):
    vol = Volume(np.full((30, 30, 20), value, np.float32), np.diag([2, 2, 2, 1.0]), "MR")
    found = check_summary(summarise(vol, "MR"), "MR", t1_record, [2, 2, 2])
    assert checks(found) == ["constant"] and f"every voxel is {value:g}" in found[0]["message"]


def test_single_slice(heads, t1_record):
    mr = heads[4].mr["t1w"]
    one = Volume(mr.array[:, :, 22:23].copy(), mr.affine, "MR")
    found = check_summary(summarise(one, "MR"), "MR", t1_record, [2, 2, 2])
    assert checks(found) == ["dimensions"] and "a single slice" in found[0]["message"]


def test_ten_mm_slices(heads, t1_record):
    from medxlate.synth.grid import to_spacing

    thick = to_spacing(heads[4].mr["t1w"], [4.0, 4.0, 10.0])
    found = check_summary(summarise(thick, "MR"), "MR", t1_record, [2, 2, 2])
    # partial volume over 10 mm may move the intensity profile too; the grid comes first
    assert checks(found)[0] == "grid" and found[0]["value"] == pytest.approx(10.0)
    assert "10 mm" in found[0]["message"]


def test_negative_mr_values(heads, t1_record):
    mr = heads[4].mr["t1w"]
    flipped = Volume(-mr.array, mr.affine, "MR")
    found = check_summary(summarise(flipped, "MR"), "MR", t1_record, [2, 2, 2])
    assert checks(found) == ["modality"] and "negative rescale slope" in found[0]["message"]


def test_dicom_modality_header_wins():
    summary = {"shape": [10, 10, 10], "spacing_mm": [1, 1, 1],
               "intensity": intensity_evidence(np.arange(1000.0))}
    found = check_summary(summary, "MR", None, None, header_modality="CT")
    assert checks(found) == ["modality"] and "DICOM Modality is CT" in found[0]["message"]


@pytest.mark.parametrize("tags, contrast", [
    ({"EchoTime": 2.3, "RepetitionTime": 2300, "InversionTime": 900}, "t1"),  # MPRAGE
    ({"EchoTime": 12, "RepetitionTime": 550}, "t1"),  # spin-echo T1w
    ({"EchoTime": 98.1, "RepetitionTime": 6285}, "t2"),  # the mridir T2 series
    ({"EchoTime": 120, "RepetitionTime": 9000, "InversionTime": 2500}, "flair"),
    ({"EchoTime": 15, "RepetitionTime": 3000}, "pd"),
    ({"EchoTime": 15}, None),
])
def test_contrast_from_tags(tags, contrast):
    assert mr_contrast_from_tags(tags)[0] == contrast


def test_t2_tags_into_a_t1_model(heads, t1_record):
    found = check_summary(summarise(heads[4].mr["t1w"], "MR"), "MR", t1_record, [2, 2, 2],
                          tags={"EchoTime": 98.1, "RepetitionTime": 6285})
    assert checks(found) == ["contrast"] and "T2-weighted (TE 98.1 ms" in found[0]["message"]


def test_body_size_by_hand():
    mask = np.zeros((10, 10, 10), bool)
    mask[2:5, 1:9, 4:6] = True  # 3 x 8 x 2 voxels of 2 x 1 x 3 mm
    size = body_size(mask, (2.0, 1.0, 3.0))
    assert size["extent_mm"] == [6.0, 8.0, 6.0]
    assert size["volume_ml"] == pytest.approx(48 * 6 / 1000)


def test_evidence_by_hand():
    a = np.array([-1024, -1000, -950, 0, 40, 400, 1200, -300], np.float32)
    ev = intensity_evidence(a)
    assert ev["air_fraction"] == 3 / 8 and ev["bone_fraction"] == 2 / 8
    assert ev["negative_fraction"] == 4 / 8
