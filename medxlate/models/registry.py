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
# Modality tags of a translation's source and target. "mr" is an MR of unstated contrast;
# the others name a contrast. NO_SOURCE as a source means unconditional generation.
MR_CONTRASTS = ("t1", "t1ce", "t2", "flair", "pd")
MODALITIES = ("ct", "mr", *MR_CONTRASTS)
NO_SOURCE = "none"
# The legacy --direction names are aliases of these translations.
DIRECTION_PAIRS = {"mri2ct": ("mr", "ct"), "ct2mri": ("ct", "mr")}


def is_mr(tag: str) -> bool:
    """True for every MR tag ("mr" or a named contrast)."""
    return tag == "mr" or tag in MR_CONTRASTS


def image_modality(tag: str) -> str:
    """"CT" or "MR": the intensity convention (HU window or MR normalisation) of a tag."""
    return "CT" if tag == "ct" else "MR"


def direction_of(source: str, target: str) -> str | None:
    """The legacy direction name of an MR<->CT translation, None for anything else."""
    if is_mr(source) and target == "ct":
        return "mri2ct"
    if source == "ct" and is_mr(target):
        return "ct2mri"
    return None


def translation_label(pair: tuple[str, str]) -> str:
    """``("t1", "t2")`` -> "t1->t2"; an unconditional one reads "none->ct"."""
    return f"{pair[0]}->{pair[1]}"


def check_tag(tag: str, role: str) -> str:
    """A lower-cased modality tag, or a UsageError naming the known ones."""
    tag = str(tag).lower()
    known = MODALITIES + ((NO_SOURCE,) if role == "source" else ())
    if tag not in known:
        raise UsageError(f"unknown {role} modality {tag!r} (choose from {', '.join(known)})")
    return tag


@dataclass(frozen=True)
class ModelSpec:
    """What medxlate knows about a model before building it.

    Args:
        name: registry name used on the command line (``--model NAME``).
        family: the family package that implements it.
        description: one line for `medxlate models`.
        directions: supported MR<->CT directions ("mri2ct", "ct2mri"); derived from
            ``translations`` when empty.
        spatial_dims: "2d", "2.5d" or "3d".
        configs: named configs (JSON-able dicts); every family offers "paper" and "demo".
        default_sampler: sampler used when ``--sampler`` is not given.
        samplers: samplers compatible with this model.
        entry: "module:attribute" of the torch-side family object.
        weights: file name in weights/ for the default shipped weights, if any.
        default_config: the config a bare ``medxlate train --model NAME`` uses.
        reference: the paper this model follows.
        translations: (source, target) modality tags it can learn, e.g. ``(("t1", "t2"),
            ("t1", "ct"))``; a source of ``"none"`` is unconditional generation. Derived from
            ``directions`` when empty ("mri2ct" is ``("mr", "ct")``).
        extra: free-form facts for the torch side (JSON-able).
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
    translations: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        unknown = [d for d in self.directions if d not in DIRECTIONS]
        if unknown:
            raise ValueError(f"{self.name}: bad directions {unknown}")
        pairs = tuple(tuple(p) for p in self.translations)
        if not pairs:
            pairs = tuple(DIRECTION_PAIRS[d] for d in self.directions if d in DIRECTIONS)
        bad_pairs = [p for p in pairs if len(p) != 2 or p[0] not in MODALITIES + (NO_SOURCE,)
                     or p[1] not in MODALITIES or p[0] == p[1]]
        # An autoencoder (a part of latent models, trained on its own) translates nothing.
        if bad_pairs or (not pairs and not self.is_autoencoder):
            raise ValueError(f"{self.name}: bad translations {bad_pairs or pairs}")
        object.__setattr__(self, "translations", pairs)
        if not self.directions:
            derived = {direction_of(*p) for p in pairs} - {None}
            object.__setattr__(self, "directions",
                               tuple(d for d in DIRECTIONS if d in derived))
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

    def resolve_translation(self, source: str | None = None, target: str | None = None,
                            direction: str | None = None,
                            default: tuple[str, str] | None = None) -> tuple[str, str]:
        """The (source, target) tags a request means, checked against ``translations``.

        ``direction`` ("mri2ct"/"ct2mri") is an alias of ("mr", "ct")/("ct", "mr"). Missing
        parts come from ``default`` (e.g. the checkpoint's training translation), then from
        the only translation that fits. A model that learned a named contrast ("t1") accepts
        the generic "mr" for it when that is unambiguous, and a model that learned "mr"
        (contrast unstated) accepts any MR contrast.

        Raises:
            UsageError: contradictory options, unknown tags, or a translation this model
                does not do.
        """
        if self.is_autoencoder:
            raise UsageError(f"model {self.name} is an autoencoder (a part of latent models); "
                             "it does not translate")
        if direction is not None:
            if direction not in DIRECTION_PAIRS:
                raise UsageError(f"--direction {direction!r}: choose mri2ct or ct2mri "
                                 "(or --source/--target)")
            d_src, d_tgt = DIRECTION_PAIRS[direction]
            if (source and not _same_kind(check_tag(source, "source"), d_src)) or \
                    (target and not _same_kind(check_tag(target, "target"), d_tgt)):
                raise UsageError(f"--direction {direction} contradicts --source/--target")
            source, target = source or d_src, target or d_tgt
        src = check_tag(source, "source") if source else None
        tgt = check_tag(target, "target") if target else None
        if default is not None and src is None and tgt is None:
            src, tgt = default
        candidates = [p for p in self.translations
                      if (src is None or _tag_fits(src, p[0]))
                      and (tgt is None or _tag_fits(tgt, p[1]))]
        exact = [p for p in candidates if (src is None or p[0] == src)
                 and (tgt is None or p[1] == tgt)]
        if default is not None and tuple(default) in candidates:
            pair = tuple(default)
        elif len(exact) == 1:
            pair = exact[0]
        elif len(candidates) == 1:
            pair = candidates[0]
        else:
            pair = None
        if pair is not None:
            # A request for a named contrast on an "mr" model keeps the user's tag.
            return (src if src and pair[0] == "mr" else pair[0],
                    tgt if tgt and pair[1] == "mr" else pair[1])
        offered = ", ".join(translation_label(p) for p in self.translations)
        wanted = f"{src or '?'}->{tgt or '?'}"
        if not candidates:
            raise UsageError(f"model {self.name} does not translate {wanted} "
                             f"(it does {offered})")
        raise UsageError(f"model {self.name}: {wanted} is ambiguous (it does {offered}); "
                         "give --source and --target")

    @property
    def is_autoencoder(self) -> bool:
        """True for autoencoders (``extra["autoencoder"]``): trained, never translating."""
        return bool(self.extra.get("autoencoder"))

    def load_entry(self) -> Any:
        """Import and return the torch-side family object (this imports torch)."""
        module, _, attr = self.entry.partition(":")
        return getattr(importlib.import_module(module), attr)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["directions"] = list(self.directions)
        data["samplers"] = list(self.samplers)
        data["translations"] = [list(p) for p in self.translations]
        return data


def _tag_fits(asked: str, offered: str) -> bool:
    """Whether a requested tag is served by a model's tag (see resolve_translation)."""
    return asked == offered or (offered == "mr" and is_mr(asked)) or (
        asked == "mr" and offered in MR_CONTRASTS)


def _same_kind(a: str, b: str) -> bool:
    return a == b or (is_mr(a) and is_mr(b))


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
