"""Import foreign checkpoints into medxlate's safetensors format (`medxlate weights import`).

Foreign ``.pth`` files are read with ``torch.load(weights_only=True)`` (no pickled code runs)
and mapped through an explicit key map of the family; the result is a normal medxlate
checkpoint whose metadata rebuilds the model.

Orientation and intensities of SynDiff imports (icon-lab/SynDiff, ``dataset.py`` and README):
its data are ``.mat`` files of shape (#images, width, height) with values in [0, 1] (each
volume min-max scaled by the user's preparation), and its loader transposes every slice to
(height, width) and maps [0, 1] to [-1, 1] (``(x - 0.5) / 0.5``). A volume read with nibabel
or SimpleITK-then-transposed, as such data are usually prepared, is (x, y, z), so an axial
slice stacked as (width, height) = (x, y) reaches the network as rows = y, columns = x.
medxlate's own slices are rows = x (left-right), columns = y (posterior-anterior); imported
generators therefore get ``slice_transpose: true`` in their config and the syndiff family
transposes each slice before the generator and the result after it, so the anatomy reaches
the network as it did in training (up to the flips of the user's own preparation, which a
checkpoint does not record: a dataset prepared from LPS-ordered files is flipped in both
axes, and then medxlate's canonical RAS slices are too). MR is min-max scaled per volume
(``--mr-percentiles 0 100``, the default here) over medxlate's body mask: the maximum is the
public data's, the minimum is the darkest voxel in the body rather than the background's 0,
so when that voxel is above 0 tissue maps slightly lower than in the public preparation.
CT uses the HU window given (default [-1024, 3000] -> [-1, 1]).

Example:
    >>> import_checkpoint("syndiff", "gen_diffusive_1_500.pth", "model.safetensors",
    ...                   direction="mri2ct")                              # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medxlate.errors import InputError, UsageError, WeightsError
from medxlate.io.atomic import check_writable
from medxlate.weights.format import CheckpointMeta, save_checkpoint
from medxlate.weights.verify import sha256_file

SOURCES = ("syndiff", "controlnet")
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
                      config: str = "paper", direction: str | None = None,
                      normalisation: dict[str, Any] | None = None,
                      spacing_mm: list[float] | None = None,
                      overwrite: bool = False,
                      pretrained: Path | str | None = None) -> dict[str, Any]:
    """Convert a foreign checkpoint and write ``out`` atomically.

    Args:
        source: "syndiff" (a diffusive generator ``gen_diffusive_*.pth`` of icon-lab/SynDiff).
        path: the foreign file.
        out: the medxlate checkpoint to write (.safetensors).
        config: the named config the generator was trained with ("paper": nf 64,
            ch_mult 1,1,2,2,4,4, 256x256).
        direction: what the generator translates ("mri2ct": its condition was MR); default
            mri2ct for syndiff, ct2mri (the Mediffuse seed's) for controlnet.
        normalisation: MR/CT normalisation for synthesize (docs/dataset-format.md);
            default: CT window [-1024, 3000] HU, MR min-max (percentiles 0 and 100).
        spacing_mm: the voxel spacing the model was trained at (synthesize resamples to
            it); None: inputs are translated at their own spacing.
        overwrite: replace an existing ``out``.
        pretrained: "controlnet" only: the local SD 1.5 folder the ControlNet (``path``, a
            diffusers-format folder) steers (medxlate.weights.controlnet).

    Returns:
        A summary: model, network, config, tensors, parameters, source sha256.
    """
    if source not in SOURCES:
        raise UsageError(f"unknown import source {source!r}; known: {', '.join(SOURCES)}")
    if source == "controlnet":
        from medxlate.weights.controlnet import import_controlnet

        return import_controlnet(path, out, pretrained=pretrained, config=config,
                                 direction=direction or "ct2mri",
                                 normalisation=normalisation or DEFAULT_NORMALISATION,
                                 spacing_mm=spacing_mm, overwrite=overwrite)
    if pretrained is not None:
        raise UsageError("--pretrained applies to --from controlnet only")
    direction = direction or "mri2ct"
    from medxlate.models.nets.ncsnpp import NCSNpp
    from medxlate.models.registry import get_spec
    from medxlate.models.syndiff.convert import import_reference
    from medxlate.models.syndiff.family import _NAME, generator_config

    spec = get_spec("syndiff")
    if direction not in spec.directions:
        raise UsageError(f"--direction must be one of {', '.join(spec.directions)}")
    # slice_transpose: the public loader shows the network every slice transposed (module
    # docstring, "Orientation"); the syndiff family does the same for these weights.
    cfg = {**spec.config(config), "direction": direction, "pairing": "paired",
           "slice_transpose": True}
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
            "slice_transpose": True,
            "tensors": len(mapped), "parameters": int(sum(v.numel() for v in mapped.values())),
            "source_sha256": digest, "out": str(out)}
