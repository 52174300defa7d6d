"""Training-time augmentation of one sample (all arrays (C, H, W), network space [-1, 1]).

Geometric transforms (flips, a small affine) are applied identically to every array of a
sample so that paired MR, CT, mask and edges stay aligned; images are resampled bilinearly
with -1 (air/background) outside, masks and edges by nearest neighbour. MR intensity jitter
(scale, shift and, for percentile-normalised MR, a gamma) is applied only when MR is the
source: jittering a target would teach the model wrong intensities.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

IMAGES = ("mr", "ct")


def augment_sample(sample: dict[str, np.ndarray], rng: np.random.Generator,
                   options: dict[str, Any], mr_is_source: bool,
                   lr_dim: int | None = -2, ap_dim: int | None = -1) -> dict[str, np.ndarray]:
    """Return an augmented copy of ``sample`` (the draws come from ``rng`` only).

    ``lr_dim``/``ap_dim`` are the array dims of the left-right and anterior-posterior axes
    (axial slices of a canonical RAS+ volume: H is left-right, W is posterior-anterior);
    None where the slice has no such axis (that flip is then never applied).
    """
    out = dict(sample)
    # Draw every random number up front, in a fixed order, so a sample's augmentation
    # depends only on its seed.
    flip_lr = rng.random() < options["flip_lr"]
    flip_ap = rng.random() < options["flip_ap"]
    do_affine = rng.random() < options["affine"]
    angle = math.radians(rng.uniform(-1, 1) * options["rotate_deg"])
    scale = 1.0 + rng.uniform(-1, 1) * options["scale"]
    shift = rng.uniform(-1, 1, size=2) * options["translate"] * 2  # affine_grid units: [-1, 1]
    do_jitter = rng.random() < options["mr_jitter"]
    j_scale = 1.0 + rng.uniform(-1, 1) * options["mr_scale"]
    j_shift = rng.uniform(-1, 1) * options["mr_shift"]
    j_gamma = math.exp(rng.uniform(-1, 1) * options["mr_gamma"])
    for name in list(out):
        a = out[name]
        if flip_lr and lr_dim is not None:
            a = np.flip(a, axis=lr_dim)
        if flip_ap and ap_dim is not None:
            a = np.flip(a, axis=ap_dim)
        out[name] = a
    if do_affine:
        theta = _theta(angle, scale, shift)
        for name in list(out):
            out[name] = _warp(out[name], theta, name in IMAGES)
    if do_jitter and mr_is_source:
        out["mr"] = jitter_mr(out["mr"], j_scale, j_shift, j_gamma)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def jitter_mr(mr: np.ndarray, scale: float, shift: float, gamma: float) -> np.ndarray:
    """Gamma on [0, 1] then scale/shift in [-1, 1], clipped back to [-1, 1]."""
    u = np.clip((mr + 1.0) / 2.0, 0.0, 1.0) ** gamma
    return np.clip((2.0 * u - 1.0) * scale + shift, -1.0, 1.0)


def _theta(angle: float, scale: float, shift: np.ndarray) -> torch.Tensor:
    c, s = math.cos(angle) / scale, math.sin(angle) / scale
    return torch.tensor([[[c, -s, shift[0]], [s, c, shift[1]]]], dtype=torch.float32)


def _warp(a: np.ndarray, theta: torch.Tensor, is_image: bool) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if is_image:
        # zero padding of (x + 1) fills with -1, the background value in network space
        y = F.grid_sample(x + 1.0, grid, mode="bilinear", align_corners=False) - 1.0
    else:
        y = F.grid_sample(x, grid, mode="nearest", align_corners=False)
    return y[0].numpy()
