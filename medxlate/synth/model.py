"""Load a model for synthesis once per run: weights, verification, networks on a device."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medxlate.errors import UsageError, WeightsError
from medxlate.weights import CheckpointMeta, load_checkpoint, sha256_file, shipped_weights


@dataclass
class LoadedModel:
    """A model ready to translate slices.

    Attributes:
        spec: the registry entry.
        family: the torch-side family object.
        nets: the inference networks (eval mode, on ``device``).
        meta: the checkpoint metadata (config, normalisation, training data).
        weights: path of the weights file; sha256: its hash.
    """

    spec: Any
    family: Any
    nets: dict
    meta: CheckpointMeta
    weights: Path
    sha256: str
    device: Any
    # An ensemble (several --weights, or a folder of folds): every member, this one first.
    members: list = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        return self.meta.config

    def directions(self) -> tuple[str, ...]:
        """Directions this checkpoint can translate (its training direction, unless the
        family says one checkpoint serves more, e.g. CycleGAN's two generators)."""
        extra = getattr(self.family, "directions", None)
        if extra is not None:
            return tuple(d for d in extra(self.config) if d in self.spec.directions)
        return (self.config.get("direction", "mri2ct"),)

    def translations(self) -> tuple[tuple[str, str], ...]:
        """(source, target) tags this checkpoint learned, its training one first: the
        family's ``translations(config)`` when it has one, else its config's
        ``source``/``target``, else the legacy directions."""
        from medxlate.models.registry import DIRECTION_PAIRS

        extra = getattr(self.family, "translations", None)
        if extra is not None:
            return tuple(tuple(p) for p in extra(self.config))
        cfg = self.config
        first = ((cfg["source"], cfg["target"]) if cfg.get("source") and cfg.get("target")
                 else None)
        legacy = [DIRECTION_PAIRS[d] for d in self.directions()]
        if first is None:
            return tuple(legacy)
        # A family serving several directions (CycleGAN) keeps the others after its own.
        others = [p for p in legacy if (p[0] == "ct") != (first[0] == "ct")]
        return (first, *others) if hasattr(self.family, "directions") else (first,)

    def stochastic(self, config: dict[str, Any]) -> bool:
        """Whether repeated translations of the same input differ (noise-driven sampling)."""
        check = getattr(self.family, "stochastic", None)
        return True if check is None else bool(check(config))


def resolve_weights(spec, weights: Path | str | None) -> tuple[Path, str | None]:
    """(path, expected sha256 or None) of ``--weights`` or of the model's shipped weights."""
    if weights is not None:
        return Path(weights), None
    hint = (f"pass --weights FILE (a model.safetensors written by `medxlate train --model "
            f"{spec.name}`)")
    if not spec.weights:
        raise WeightsError(f"model {spec.name} ships no default weights; {hint}")
    try:
        return shipped_weights(spec.weights)
    except WeightsError as exc:
        raise WeightsError(f"{exc}; {hint}") from exc


def load_model(name: str, weights: Path | str | None = None, device=None) -> LoadedModel:
    """Build model ``name`` from a checkpoint (sha256-verified when shipped).

    Raises:
        UsageError: unknown model.
        WeightsError: missing/corrupt weights, a checkpoint of another model, or tensors that
            do not fit the networks its config describes.
    """
    import torch

    from medxlate.models.registry import get_spec

    spec = get_spec(name)
    if spec.is_autoencoder:
        raise UsageError(f"model {name} is an autoencoder (a part of latent models such as dit "
                         "and med-dit); it does not synthesize")
    path, expected = resolve_weights(spec, weights)
    tensors, meta = load_checkpoint(path, sha256=expected)
    if meta.model != spec.name:
        raise WeightsError(f"{path} holds a {meta.model!r} checkpoint, not {spec.name!r}; "
                           f"use --model {meta.model} or other weights")
    norm = meta.normalisation or {}
    if "mr" not in norm or "ct" not in norm:
        raise WeightsError(f"{path}: checkpoint has no MR/CT normalisation parameters")
    family = spec.load_entry()
    try:
        built = family.build(meta.config)
    except (KeyError, ValueError, TypeError) as exc:
        raise WeightsError(f"{path}: its config cannot build {spec.name} ({exc})") from exc
    names = list(family.inference_nets(meta.config))
    unknown = sorted({k.split(".", 1)[0] for k in tensors} - set(names))
    if unknown:
        raise WeightsError(f"{path}: tensors for unknown network(s) {unknown}")
    nets = {}
    for net_name in names:
        prefix = net_name + "."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            built[net_name].load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise WeightsError(f"{path}: weights do not fit {spec.name}'s {net_name} "
                               f"({first})") from exc
        nets[net_name] = built[net_name].to(device or torch.device("cpu")).eval()
    digest = expected or sha256_file(path)
    return LoadedModel(spec, family, nets, meta, path, digest, device)
