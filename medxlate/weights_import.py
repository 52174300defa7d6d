"""Import foreign checkpoints into medxlate's safetensors format (`medxlate weights import`).

Foreign ``.pth`` files are read with ``torch.load(weights_only=True)`` (no pickled code runs)
and mapped through an explicit key map of the family; the result is a normal medxlate
checkpoint whose metadata rebuilds the model.

Example:
    >>> import_checkpoint("syndiff", "gen_diffusive_1_500.pth", "model.safetensors",
    ...                   direction="mri2ct")                              # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medxlate.errors import InputError, UsageError, WeightsError
from medxlate.io.atomic import check_writable
from medxlate.weights import CheckpointMeta, save_checkpoint, sha256_file

SOURCES = ("syndiff",)
DEFAULT_NORMALISATION = {
    "ct": {"kind": "window", "low": -1024.0, "high": 3000.0},
    "mr": {"kind": "percentile", "low_pct": 0.0, "high_pct": 100.0},
}


def _state_dict(path: Path) -> dict[str, Any]:
    import pickle

    import torch

    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        raise WeightsError(f"{path}: not a loadable weights-only PyTorch checkpoint "
                           f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                           ) from exc
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"{path}: expected a state dict (name -> tensor)")
    return obj


def import_checkpoint(source: str, path: Path | str, out: Path | str, *,
                      config: str = "paper", direction: str = "mri2ct",
                      normalisation: dict[str, Any] | None = None,
                      spacing_mm: list[float] | None = None,
                      overwrite: bool = False) -> dict[str, Any]:
    """Convert a foreign checkpoint and write ``out`` atomically.

    Args:
        source: "syndiff" (a diffusive generator ``gen_diffusive_*.pth`` of icon-lab/SynDiff).
        path: the foreign file.
        out: the medxlate checkpoint to write (.safetensors).
        config: the named config the generator was trained with ("paper": nf 64,
            ch_mult 1,1,2,2,4,4, 256x256).
        direction: what the generator translates ("mri2ct": its condition was MR).
        normalisation: MR/CT normalisation for synthesize (docs/dataset-format.md);
            default: CT window [-1024, 3000] HU, MR min-max (percentiles 0 and 100).
        spacing_mm: the voxel spacing the model was trained at (synthesize resamples to
            it); None: inputs are translated at their own spacing.
        overwrite: replace an existing ``out``.

    Returns:
        A summary: model, network, config, tensors, parameters, source sha256.
    """
    if source not in SOURCES:
        raise UsageError(f"unknown import source {source!r}; known: {', '.join(SOURCES)}")
    from medxlate.models.nets.ncsnpp import NCSNpp
    from medxlate.models.registry import get_spec
    from medxlate.models.syndiff.convert import import_reference
    from medxlate.models.syndiff.family import _NAME, generator_config

    spec = get_spec("syndiff")
    if direction not in spec.directions:
        raise UsageError(f"--direction must be one of {', '.join(spec.directions)}")
    cfg = {**spec.config(config), "direction": direction, "pairing": "paired"}
    path, out = Path(path), Path(out)
    check_writable(out, overwrite)
    state = _state_dict(path)
    gcfg = generator_config(cfg)
    shapes = {k: v.shape for k, v in NCSNpp(gcfg).state_dict().items()}
    mapped = import_reference(state, gcfg, shapes)
    net = f"G_{_NAME[direction]}"
    digest = sha256_file(path)
    meta = CheckpointMeta(
        model="syndiff", config={**cfg, "config_name": config, "model": "syndiff"},
        normalisation=normalisation or DEFAULT_NORMALISATION,
        data={"imported_from": path.name, "source": source,
              **({"spacing_mm": [float(v) for v in spacing_mm]} if spacing_mm else {})},
        extra={"import": {"source": source, "file": path.name, "sha256": digest}})
    save_checkpoint(out, {f"{net}.{k}": v for k, v in mapped.items()}, meta, overwrite=overwrite)
    return {"model": "syndiff", "network": net, "config": config, "direction": direction,
            "tensors": len(mapped), "parameters": int(sum(v.numel() for v in mapped.values())),
            "source_sha256": digest, "out": str(out)}
