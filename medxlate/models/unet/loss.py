"""Losses of the U-Net regression family: masked L1, deep supervision, tissue balance.

All images are in network units: CT window [low, high] HU -> [-1, 1] (the dataset's
normalisation), so an L1 of ``e`` is ``e * (high - low) / 2`` HU.
"""

from __future__ import annotations

import torch


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |pred - target| over voxels where ``mask`` > 0 (the SynthRAD MAE inside the body);
    the plain mean when the mask is empty."""
    err = (pred.float() - target.float()).abs()
    m = (mask > 0).to(err.dtype).expand_as(err)
    n = m.sum()
    if n < 1:
        return err.mean()
    return (err * m).sum() / n


def deep_supervision_weights(n: int) -> list[float]:
    """nnU-Net's weights for the full-resolution output and ``n - 1`` lower ones: halving
    per level, normalised to sum to 1."""
    w = [0.5 ** i for i in range(n)]
    total = sum(w)
    return [x / total for x in w]


def hu_to_unit(hu: float, normalisation: dict) -> float:
    """A CT value in HU as the network sees it (the dataset's CT window -> [-1, 1])."""
    ct = normalisation["ct"]
    low, high = float(ct["low"]), float(ct["high"])
    return 2.0 * (hu - low) / (high - low) - 1.0


def tissue_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
              bounds_unit: tuple[float, float]) -> torch.Tensor:
    """Tissue-balanced L1: the mean over air / soft tissue / bone (classes of the *target* CT
    thresholded at ``bounds_unit``) of the within-class masked L1; absent classes are left
    out. Bone and air, a few percent of the body's voxels, weigh as much as soft tissue."""
    lo, hi = bounds_unit
    t = target.float()
    body = mask > 0
    classes = (body & (t < lo), body & (t >= lo) & (t <= hi), body & (t > hi))
    err = (pred.float() - t).abs()
    terms = [err[c].mean() for c in classes if bool(c.any())]
    if not terms:
        return err.mean()
    return torch.stack(terms).mean()


def regression_loss(outputs: list[torch.Tensor], target: torch.Tensor, mask: torch.Tensor,
                    tissue_weight: float, bounds_unit: tuple[float, float]
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """Deep-supervised masked L1 (+ ``tissue_weight`` x tissue-balanced L1) over ``outputs``
    (full resolution first; MONAI's DynUNet upsamples its lower heads to full size)."""
    weights = deep_supervision_weights(len(outputs))
    total = target.new_zeros((), dtype=torch.float32)
    logs: dict[str, float] = {}
    for i, (w, out) in enumerate(zip(weights, outputs)):
        l1 = masked_l1(out, target, mask)
        term = l1
        if tissue_weight:
            tl = tissue_l1(out, target, mask, bounds_unit)
            term = l1 + tissue_weight * tl
            if i == 0:
                logs["tissue_l1"] = float(tl.detach())
        if i == 0:
            logs["l1"] = float(l1.detach())
        total = total + w * term
    logs["loss"] = float(total.detach())
    return total, logs
