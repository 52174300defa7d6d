"""`medxlate weights import --from controlnet`: a diffusers-format ControlNet folder and a
local SD 1.5 folder become one medxlate ``mediffuse-controlnet`` checkpoint.

A ControlNet alone cannot translate: it steers an SD U-Net, so the SD folder it was trained
against is required (``--pretrained``). The checkpoint is what ``medxlate train`` would
write before its first step: the named config (``paper`` by default) with the folders' layouts recorded, the
weights of every part, and the given normalisation; ``synthesize`` then needs neither folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medxlate.errors import UsageError
from medxlate.io.atomic import check_writable
from medxlate.weights.format import CheckpointMeta, model_tensors, save_checkpoint


def import_controlnet(folder: Path | str, out: Path | str, *, pretrained: Path | str | None,
                      config: str = "paper", direction: str = "ct2mri",
                      normalisation: dict[str, Any],
                      spacing_mm: list[float] | None = None,
                      overwrite: bool = False) -> dict[str, Any]:
    """Write ``out`` from the ControlNet ``folder`` and the SD folder ``pretrained``.

    Raises:
        UsageError: no ``pretrained`` folder, or a direction the model does not do.
        WeightsError: a folder that is absent, malformed or does not fit SD 1.5's layout.
    """
    import torch

    from medxlate.models.registry import get_spec
    from medxlate.train.config import resolve_config

    if pretrained is None:
        raise UsageError("--from controlnet needs --pretrained SD_FOLDER: a ControlNet steers "
                         "the Stable Diffusion U-Net it was trained with")
    spec = get_spec("mediffuse-controlnet")
    if direction not in spec.directions:
        raise UsageError(f"--direction must be one of {', '.join(spec.directions)}")
    out = Path(out)
    check_writable(out, overwrite)
    cfg = resolve_config(spec, config, {"direction": direction, "pretrained": str(pretrained),
                                         "controlnet": str(folder)})
    family = spec.load_entry()
    updates, states = family.pretrained(cfg)
    cfg.update(updates)
    torch.manual_seed(0)
    nets = family.build(cfg)
    for name, state in states.items():
        nets[name].load_state_dict(state, strict=True)
    names = family.inference_nets(cfg)
    tensors = model_tensors(nets, names)
    meta = CheckpointMeta(
        model=spec.name, config=cfg, normalisation=normalisation,
        data={"imported_from": Path(folder).name, "source": "controlnet",
              **({"spacing_mm": [float(v) for v in spacing_mm]} if spacing_mm else {})},
        extra={"import": {"source": "controlnet", "controlnet": str(folder),
                          "pretrained": str(pretrained)}})
    save_checkpoint(out, tensors, meta, overwrite=overwrite)
    return {"model": spec.name, "network": "controlnet", "config": config,
            "direction": direction, "tensors": len(tensors),
            "parameters": int(sum(v.numel() for v in tensors.values())), "out": str(out)}
