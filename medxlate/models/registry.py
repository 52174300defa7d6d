"""The model registry: one ModelSpec per model, discovered without importing torch.

A family is a subpackage ``medxlate.models.<family>`` whose ``__init__`` defines
``SPECS = [ModelSpec(...), ...]`` using only the standard library. The torch side is named
by ``ModelSpec.entry`` ("module:attribute") and imported only when a model is built.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from medxlate.errors import UsageError

DIRECTIONS = ("mri2ct", "ct2mri")
SPATIAL_DIMS = ("2d", "2.5d", "3d")


@dataclass(frozen=True)
class ModelSpec:
    """What medxlate knows about a model before building it.

    Args:
        name: registry name used on the command line (``--model NAME``).
        family: the family package that implements it.
        description: one line for `medxlate models`.
        directions: supported translation directions ("mri2ct", "ct2mri").
        spatial_dims: "2d", "2.5d" or "3d".
        configs: named configs (JSON-able dicts); every family offers "paper" and "demo".
        default_sampler: sampler used when ``--sampler`` is not given.
        samplers: samplers compatible with this model.
        entry: "module:attribute" of the torch-side family object.
        weights: file name in weights/ for the default shipped weights, if any.
        default_config: the config a bare ``medxlate train --model NAME`` uses.
        reference: the paper this model follows.
    """

    name: str
    family: str
    description: str
    directions: tuple[str, ...]
    spatial_dims: str
    configs: dict[str, dict[str, Any]]
    default_sampler: str
    samplers: tuple[str, ...]
    entry: str
    weights: str | None = None
    default_config: str = "demo"
    reference: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = [d for d in self.directions if d not in DIRECTIONS]
        if bad or self.spatial_dims not in SPATIAL_DIMS:
            raise ValueError(f"{self.name}: bad directions {bad} or dims {self.spatial_dims}")
        if self.default_sampler not in self.samplers:
            raise ValueError(f"{self.name}: default sampler not among its samplers")
        if self.default_config not in self.configs:
            raise ValueError(f"{self.name}: default config {self.default_config!r} missing")

    def config(self, name: str | None = None) -> dict[str, Any]:
        """A copy of a named config (the default one when ``name`` is None)."""
        name = name or self.default_config
        if name not in self.configs:
            raise UsageError(f"model {self.name} has no config {name!r}; "
                             f"choose from {', '.join(self.configs)}")
        return dict(self.configs[name])

    def load_entry(self) -> Any:
        """Import and return the torch-side family object (this imports torch)."""
        module, _, attr = self.entry.partition(":")
        return getattr(importlib.import_module(module), attr)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["directions"] = list(self.directions)
        data["samplers"] = list(self.samplers)
        return data


@lru_cache(maxsize=1)
def _discover() -> dict[str, ModelSpec]:
    import medxlate.models as pkg

    specs: dict[str, ModelSpec] = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if not info.ispkg or info.name == "nets":
            continue
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        for spec in getattr(module, "SPECS", ()):
            if spec.name in specs:
                raise RuntimeError(f"model name {spec.name!r} registered twice")
            specs[spec.name] = spec
    return specs


def all_specs() -> list[ModelSpec]:
    """Every registered model, sorted by name."""
    return [s for _, s in sorted(_discover().items())]


def get_spec(name: str) -> ModelSpec:
    """The spec of ``name``; a UsageError listing the known names otherwise."""
    specs = _discover()
    if name not in specs:
        known = ", ".join(sorted(specs)) or "none registered"
        raise UsageError(f"unknown model {name!r} (known: {known})")
    return specs[name]
