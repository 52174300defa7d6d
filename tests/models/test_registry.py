"""Model registry: discovery with zero or more families, lookups, `medxlate models --json`."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

import medxlate.models as models_pkg
from medxlate.cli.main import app
from medxlate.errors import UsageError
from medxlate.models import registry
from medxlate.models.registry import ModelSpec, all_specs, get_spec

FAMILY = '''
from medxlate.models.registry import ModelSpec

SPECS = [ModelSpec(
    name="toy", family="toyfamily", description="a test family",
    directions=("mri2ct",), spatial_dims="2d",
    configs={"demo": {"width": 4}, "paper": {"width": 64}},
    default_sampler="ddim", samplers=("ddim", "ddpm"), entry="toyfamily.net:FAMILY",
)]
'''


@pytest.fixture()
def fake_models_path(tmp_path, monkeypatch):
    """Point discovery at a folder of our own; restore the real registry afterwards."""
    monkeypatch.setattr(models_pkg, "__path__", [str(tmp_path)])
    registry._discover.cache_clear()
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("medxlate.models.toyfamily")
                 or m == "medxlate.models.nets_must_be_skipped"]:
        del sys.modules[name]
    registry._discover.cache_clear()


def test_empty_registry(fake_models_path):
    assert all_specs() == []
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    with pytest.raises(UsageError, match="none registered"):
        get_spec("anything")


def test_one_family_discovered_and_nets_skipped(fake_models_path):
    (fake_models_path / "toyfamily").mkdir()
    (fake_models_path / "toyfamily" / "__init__.py").write_text(FAMILY)
    (fake_models_path / "nets").mkdir()
    (fake_models_path / "nets" / "__init__.py").write_text("raise RuntimeError('imported')\n")
    specs = all_specs()
    assert [s.name for s in specs] == ["toy"]
    spec = get_spec("toy")
    assert spec.config() == {"width": 4} and spec.config("paper") == {"width": 64}
    with pytest.raises(UsageError, match="no config 'huge'"):
        spec.config("huge")
    result = CliRunner().invoke(app, ["models", "--json"])
    listed = json.loads(result.stdout)
    assert listed[0]["name"] == "toy" and listed[0]["samplers"] == ["ddim", "ddpm"]
    with pytest.raises(UsageError, match="known: toy"):
        get_spec("nope")


def test_real_registry_is_consistent():
    specs = all_specs()
    names = [s.name for s in specs]
    assert names == sorted(set(names))
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0
    assert [m["name"] for m in json.loads(result.stdout)] == names
    for spec in specs:
        json.dumps(spec.to_json())
        assert spec.default_config in spec.configs and spec.default_sampler in spec.samplers
        assert ":" in spec.entry


def test_spec_validation():
    base = {"name": "x", "family": "f", "description": "d", "directions": ("mri2ct",),
            "spatial_dims": "2d", "configs": {"demo": {}}, "default_sampler": "a",
            "samplers": ("a",), "entry": "m:o"}
    ModelSpec(**base)
    with pytest.raises(ValueError, match="bad directions"):
        ModelSpec(**{**base, "directions": ("pet2ct",)})
    with pytest.raises(ValueError, match="default sampler"):
        ModelSpec(**{**base, "default_sampler": "b"})
    with pytest.raises(ValueError, match="default config"):
        ModelSpec(**{**base, "default_config": "paper"})
