"""Configuration: region defaults, config files, --set overrides, hashes."""

import json

import pytest

from medxlate.errors import UsageError
from medxlate.preprocess.config import build_config, config_hash, parse_override
from medxlate.preprocess.rotations import AXIS_ROTATIONS, describe


def test_region_defaults():
    brain, pelvis = build_config("brain"), build_config("pelvis")
    assert brain["steps"]["resample"]["spacing_mm"] == [1.0, 1.0, 1.0]
    assert pelvis["steps"]["resample"]["spacing_mm"] == [1.0, 1.0, 2.5]
    assert brain["steps"]["slices"]["size"] == [256, 256]
    assert brain["normalisation"]["ct"] == {"kind": "window", "low": -1024.0, "high": 3000.0}
    assert brain["steps"]["register"]["shrink_factors"] == [8, 4, 2, 1]


def test_file_then_set(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("region: pelvis\nsteps:\n  crop:\n    margin_mm: 3\n"
                        "normalisation:\n  mr: {kind: zscore}\n")
    cfg = build_config(None, cfg_file, ["steps.crop.margin_mm=7", "steps.mask.ct.threshold=-400"])
    assert cfg["region"] == "pelvis"
    assert cfg["steps"]["crop"]["margin_mm"] == 7
    assert cfg["steps"]["mask"]["ct"]["threshold"] == -400
    assert cfg["normalisation"]["mr"] == {"kind": "zscore"}
    json_file = tmp_path / "c.json"
    json_file.write_text(json.dumps({"steps": {"slices": {"size": [128, 96]}}}))
    assert build_config("brain", json_file)["steps"]["slices"]["size"] == [128, 96]


@pytest.mark.parametrize("item,match", [
    ("steps.crop.margn_mm=3", "unknown configuration key 'steps.crop.margn_mm'"),
    ("steps.register.transform=elastic", "rigid, affine or bspline"),
    ("steps.mask.ct.radius=3", "unknown key"),
    ("normalisation.ct.kind=percentile", "not valid for CT"),
    ("noequals", "expected key=value"),
])
def test_bad_settings(item, match):
    with pytest.raises(UsageError, match=match):
        build_config("brain", None, [item])


def test_parse_override_types():
    assert parse_override("a.b=[1, 2.5]") == {"a": {"b": [1, 2.5]}}
    assert parse_override("a=false") == {"a": False}


def test_hash_ignores_split_but_not_steps():
    a = build_config("brain")
    b = build_config("brain", None, ["split.seed=5"])
    c = build_config("brain", None, ["steps.crop.margin_mm=1"])
    inputs = {"mr": "x", "ct": "y"}
    assert config_hash(a, inputs) == config_hash(b, inputs) != config_hash(c, inputs)
    assert config_hash(a, inputs) != config_hash(a, {"mr": "x", "ct": "z"})


def test_rotations_are_proper_and_distinct():
    import numpy as np

    assert len(AXIS_ROTATIONS) == 24
    assert all(abs(np.linalg.det(m) - 1) < 1e-12 for m in AXIS_ROTATIONS)
    assert len({m.tobytes() for m in AXIS_ROTATIONS}) == 24
    assert describe(AXIS_ROTATIONS[0]) == "identity"
    assert describe(np.diag([1.0, -1.0, -1.0])) == "180 deg about R (x)"
