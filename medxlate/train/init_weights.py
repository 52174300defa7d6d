"""Fine-tuning: start a run's inference networks from an existing medxlate checkpoint.

``--set init_weights=PATH`` (e.g. a shipped ``weights/<model>-demo.safetensors``) loads that
file's networks into the freshly built ones before the EMA copy and the optimisers see them;
networks the file does not hold (a discriminator) start from their usual initialisation. The
file must be a checkpoint of the same model, or of another model of the same family (e.g.
``unet-2.5d`` weights into ``unet-2.5d-any``), with tensors of the same shapes, and its
normalisation must be the dataset's, since the networks learnt in those units.
"""

from __future__ import annotations

from pathlib import Path

import torch

from medxlate.errors import UsageError


def init_from(nets: dict[str, torch.nn.Module], path: Path, model: str, names: list[str],
              normalisation: dict) -> str:
    """Load ``names`` of ``nets`` from the checkpoint at ``path``; returns a note for the log.

    Raises:
        UsageError: the file is of another family's model, misses one of the networks, has other
            shapes, or was trained with another normalisation.
        WeightsError: the file is missing or corrupt (from load_checkpoint).
    """
    from medxlate.weights import load_checkpoint

    tensors, meta = load_checkpoint(path)
    if meta.model != model and _family(meta.model) != _family(model):
        raise UsageError(f"init_weights {path}: a {meta.model} checkpoint, not {model} "
                         f"(nor another model of its family)")
    if meta.normalisation and meta.normalisation != normalisation:
        raise UsageError(f"init_weights {path}: trained with normalisation "
                         f"{meta.normalisation}, the dataset has {normalisation}")
    for name in names:
        prefix = f"{name}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not state:
            raise UsageError(f"init_weights {path}: holds no network {name!r}")
        try:
            nets[name].load_state_dict(state, strict=True)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0]
            raise UsageError(f"init_weights {path}: network {name} does not fit ({first})") \
                from None
    return f"{path} ({', '.join(names)})"


def _family(model: str) -> str | None:
    from medxlate.models.registry import get_spec

    try:
        return get_spec(model).family
    except UsageError:  # a checkpoint of a model this version does not know
        return None
