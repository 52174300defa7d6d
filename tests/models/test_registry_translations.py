"""Source -> target modality tags in the registry (issue 14's registry change)."""

import pytest

from medxlate.errors import UsageError
from medxlate.models.registry import ModelSpec, direction_of, get_spec, image_modality

BASE = {"name": "x", "family": "f", "description": "d", "directions": (),
        "spatial_dims": "3d", "configs": {"demo": {}}, "default_sampler": "a",
        "samplers": ("a",), "entry": "m:o"}


def multi_target() -> ModelSpec:
    return ModelSpec(**{**BASE, "translations": (("t1", "t2"), ("t1", "ct"))})


def test_legacy_directions_become_translations():
    spec = get_spec("syndiff")
    assert spec.translations == (("mr", "ct"), ("ct", "mr"))
    assert spec.to_json()["translations"] == [["mr", "ct"], ["ct", "mr"]]


def test_translations_derive_legacy_directions():
    assert multi_target().directions == ("mri2ct",)  # t1->ct is an MR->CT translation
    unconditional = ModelSpec(**{**BASE, "translations": (("none", "ct"),)})
    assert unconditional.directions == ()


@pytest.mark.parametrize("pair", [("t1", "t1"), ("pet", "ct"), ("t1", "none")])
def test_bad_translations_rejected(pair):
    with pytest.raises(ValueError, match="bad translations"):
        ModelSpec(**{**BASE, "translations": (pair,)})


def test_direction_aliases():
    spec = get_spec("syndiff")
    assert spec.resolve_translation(direction="mri2ct") == ("mr", "ct")
    assert spec.resolve_translation(direction="ct2mri") == ("ct", "mr")
    # A named contrast on an "mr" model keeps the user's tag.
    assert spec.resolve_translation("t1", "ct") == ("t1", "ct")
    assert spec.resolve_translation(target="mr") == ("ct", "mr")
    assert spec.resolve_translation(default=("ct", "mr")) == ("ct", "mr")


def test_multi_target_selection():
    spec = multi_target()
    assert spec.resolve_translation(target="t2") == ("t1", "t2")
    assert spec.resolve_translation(target="ct") == ("t1", "ct")
    assert spec.resolve_translation("mr", "ct") == ("t1", "ct")
    with pytest.raises(UsageError, match="ambiguous"):
        spec.resolve_translation(source="t1")
    with pytest.raises(UsageError, match="does not translate t1->flair"):
        spec.resolve_translation("t1", "flair")
    with pytest.raises(UsageError, match="unknown target modality 'pet'"):
        spec.resolve_translation(target="pet")
    with pytest.raises(UsageError, match="contradicts"):
        spec.resolve_translation(target="t2", direction="mri2ct")


def test_tag_helpers():
    assert [image_modality(t) for t in ("ct", "mr", "t2", "flair")] == ["CT", "MR", "MR", "MR"]
    assert direction_of("t1ce", "ct") == "mri2ct" and direction_of("ct", "pd") == "ct2mri"
    assert direction_of("t1", "t2") is None and direction_of("none", "ct") is None


def test_train_config_records_tags():
    from medxlate.train.config import resolve_config

    spec = get_spec("syndiff")
    cfg = resolve_config(spec, "demo", {"direction": "ct2mri"})
    assert (cfg["source"], cfg["target"], cfg["direction"]) == ("ct", "mr", "ct2mri")
    cfg = resolve_config(spec, "demo", {"source": "t2", "target": "ct"})
    assert (cfg["source"], cfg["target"], cfg["direction"]) == ("t2", "ct", "mri2ct")
    with pytest.raises(UsageError, match="does not translate"):
        resolve_config(spec, "demo", {"source": "t1", "target": "t2"})


def test_an_autoencoder_translates_nothing():
    spec = get_spec("vae")
    assert spec.is_autoencoder and spec.translations == () and spec.directions == ()
    with pytest.raises(UsageError, match="autoencoder"):
        spec.resolve_translation(direction="mri2ct")
    with pytest.raises(ValueError, match="bad translations"):  # only autoencoders may be empty
        ModelSpec(**BASE)


def test_synthesize_with_an_autoencoder_is_a_usage_error(tmp_path):
    from typer.testing import CliRunner

    from medxlate.cli.main import app

    example = "examples/brain-000/mr.nii.gz"
    res = CliRunner().invoke(app, ["synthesize", "--model", "vae", "--in", example,
                                   "--out", str(tmp_path / "x.nii.gz")])
    assert res.exit_code == 2, res.output
    assert not (tmp_path / "x.nii.gz").exists()
