"""Validation during training: translate a fixed set of validation slices, score them.

For MR->CT the error is in Hounsfield units, inside the body mask, after inverting the
dataset's CT window (docs/dataset-format.md); for CT->MR it is in network units [-1, 1]
(MR has no absolute scale). PSNR uses the window width (or 2 in network units) as the peak.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from medxlate.intensity import denormalise_ct
from medxlate.train.data import SliceData, collate


def ct_to_hu(x: torch.Tensor, ct_norm: dict[str, Any]) -> torch.Tensor:
    """Invert the CT window (medxlate.intensity.denormalise_ct) after clipping
    ``x`` to [-1, 1]."""
    hu = denormalise_ct(x.detach().clamp(-1, 1).cpu().numpy(), ct_norm)
    return torch.from_numpy(hu)


def slice_metrics(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                  peak: float) -> dict[str, float]:
    """MAE, mean error and PSNR of ``pred`` against ``target`` inside ``mask`` (all (B,1,H,W))."""
    m = mask > 0.5
    if not bool(m.any()):
        m = torch.ones_like(m)
    diff = (pred - target)[m].double()
    mse = float((diff ** 2).mean())
    return {"mae": float(diff.abs().mean()), "me": float(diff.mean()),
            "psnr": 10.0 * math.log10(peak ** 2 / mse) if mse > 0 else float("inf")}


def pick_centres(n: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(n)`` (all when n <= count)."""
    if n <= count:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, count).round().astype(int).tolist()))


@torch.no_grad()
def validate(family, nets: dict[str, torch.nn.Module], data: SliceData, config: dict[str, Any],
             normalisation: dict[str, Any], sampler: str, steps: int | None,
             device: torch.device, seed: int) -> dict[str, float]:
    """Score ``config["val_slices"]`` validation slices; keys ``val_mae[_hu]``, ``val_me``,
    ``val_psnr``, ``val_slices``."""
    if config.get("pairing") == "unconditional":
        return {}  # a generated slice has no reference to score against
    idx = pick_centres(len(data), int(config["val_slices"]))
    if not idx:
        return {}
    generator = torch.Generator(device=device).manual_seed(seed)
    mri2ct = config["direction"] == "mri2ct"
    preds, targets, masks = [], [], []
    k = int(config["context"])
    for start in range(0, len(idx), int(config["batch_size"])):
        batch = collate([data[(i, i, 0)] for i in idx[start:start + int(config["batch_size"])]])
        source = batch["mr" if mri2ct else "ct"].to(device)
        target = batch["ct" if mri2ct else "mr"][:, k:k + 1]
        pred = family.translate(nets, source, config=config, sampler=sampler, steps=steps,
                                eta=0.0, generator=generator).float().cpu()
        preds.append(pred)
        targets.append(target)
        masks.append(batch.get("mask", torch.ones_like(target)))
    pred, target, mask = torch.cat(preds), torch.cat(targets), torch.cat(masks)
    if mri2ct:
        ct_norm = normalisation["ct"]
        m = slice_metrics(ct_to_hu(pred, ct_norm), ct_to_hu(target, ct_norm), mask,
                          float(ct_norm["high"]) - float(ct_norm["low"]))
        return {"val_mae_hu": m["mae"], "val_me_hu": m["me"], "val_psnr": m["psnr"],
                "val_slices": len(idx)}
    m = slice_metrics(pred.clamp(-1, 1), target, mask, 2.0)
    return {"val_mae": m["mae"], "val_me": m["me"], "val_psnr": m["psnr"],
            "val_slices": len(idx)}
