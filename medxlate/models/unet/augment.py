"""nnU-Net's data augmentation on training batches (2.5D (B, C, H, W) or 3D (B, C, D, H, W)).

Spatial transforms (rotation, scaling, mirroring) move the source, the target and the body
mask together; intensity transforms (Gaussian noise, Gaussian blur, gamma, simulated low
resolution) change the source only, as nnU-Net does for the network input (Isensee et al.,
Nat. Methods 2021, Supplementary Note 4). All randomness comes from ``generator``, so a run is
fixed by its seed.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F


def _u(generator: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=generator, device=generator.device))


def _hit(generator: torch.Generator, p: float) -> bool:
    return p > 0 and _u(generator, 0.0, 1.0) < p


def _rotation(dims: int, generator: torch.Generator, max_rad: float) -> torch.Tensor:
    if dims == 2:
        a = _u(generator, -max_rad, max_rad)
        return torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    r = torch.eye(3)
    for axis in range(3):
        a = _u(generator, -max_rad, max_rad)
        c, s = math.cos(a), math.sin(a)
        i, j = [k for k in range(3) if k != axis]
        m = torch.eye(3)
        m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
        r = m @ r
    return r


def spatial_theta(shape: tuple[int, ...], options: dict[str, Any],
                  generator: torch.Generator) -> torch.Tensor | None:
    """An affine_grid matrix (dims x dims+1) rotating/scaling about the patch centre in voxel
    space (so a non-cubic patch is not sheared), or None when no spatial transform is drawn."""
    dims = len(shape)
    rotate = _hit(generator, float(options.get("rotate_p", 0)))
    scale = _hit(generator, float(options.get("scale_p", 0)))
    if not (rotate or scale):
        return None
    a = (_rotation(dims, generator, math.radians(float(options["rotate_deg"])))
         if rotate else torch.eye(dims))
    if scale:
        lo, hi = options["scale"]
        a = a / _u(generator, float(lo), float(hi))   # s > 1 zooms in
    # affine_grid's coordinates run x = last axis first, each normalised to [-1, 1].
    half = torch.tensor([float(n) for n in reversed(shape)]) / 2
    theta = torch.diag(1 / half) @ a @ torch.diag(half)
    return torch.cat([theta, torch.zeros(dims, 1)], 1)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of one sample (C, *spatial), sigma in voxels, edges replicated."""
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    dims = x.dim() - 1
    y = x[None]
    conv = F.conv2d if dims == 2 else F.conv3d
    c = x.shape[0]
    for axis in range(dims):
        shape = [1] * dims
        shape[axis] = k.numel()
        weight = k.reshape(1, 1, *shape).repeat(c, 1, *([1] * dims))
        pad = [0, 0] * dims
        pad[2 * (dims - 1 - axis)] = pad[2 * (dims - 1 - axis) + 1] = radius
        y = conv(F.pad(y, pad, mode="replicate"), weight, groups=c)
    return y[0]


def _low_res(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """Downsample one sample by ``zoom`` (nearest) and back (linear): simulated low resolution."""
    spatial = x.shape[1:]
    small = [max(1, int(round(n * zoom))) for n in spatial]
    mode = "bilinear" if len(spatial) == 2 else "trilinear"
    down = F.interpolate(x[None], size=small, mode="nearest")
    return F.interpolate(down, size=list(spatial), mode=mode, align_corners=False)[0]


def _gamma(x: torch.Tensor, gamma: float) -> torch.Tensor:
    """nnU-Net's gamma: rescale the sample to [0, 1], raise to ``gamma``, scale back."""
    lo, hi = x.min(), x.max()
    rng = (hi - lo).clamp_min(1e-8)
    return ((x - lo) / rng).pow(gamma) * rng + lo


def augment_batch(source: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                  options: dict[str, Any], generator: torch.Generator,
                  mirror_axes: list[int] | None = None, background: float = -1.0
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Augmented copies of a batch (same shapes). ``mirror_axes`` index the spatial axes
    (0 = first after the channel axis); None mirrors every axis."""
    dims = source.dim() - 2
    axes = list(range(dims)) if mirror_axes is None else [int(a) for a in mirror_axes]
    src, tgt, msk = [], [], []
    for b in range(source.shape[0]):
        s, t, m = source[b].float(), target[b].float(), mask[b].float()
        theta = spatial_theta(tuple(s.shape[1:]), options, generator)
        if theta is not None:
            grid = F.affine_grid(theta[None].to(s.device), [1, 1, *s.shape[1:]],
                                 align_corners=False)
            # grid_sample pads with zeros: shift so that the padding is the background value.
            s = F.grid_sample((s - background)[None], grid, align_corners=False)[0] + background
            t = F.grid_sample((t - background)[None], grid, align_corners=False)[0] + background
            m = F.grid_sample(m[None], grid, mode="nearest", align_corners=False)[0]
        for axis in axes:
            if _hit(generator, float(options.get("mirror_p", 0))):
                s, t, m = (v.flip(axis + 1) for v in (s, t, m))
        if _hit(generator, float(options.get("noise_p", 0))):
            std = _u(generator, 0.0, float(options["noise_std"]))
            s = s + std * torch.randn(s.shape, generator=generator, device=generator.device)
        if _hit(generator, float(options.get("blur_p", 0))):
            s = _gaussian_blur(s, _u(generator, *map(float, options["blur_sigma"])))
        if _hit(generator, float(options.get("gamma_p", 0))):
            s = _gamma(s, _u(generator, *map(float, options["gamma"])))
        if _hit(generator, float(options.get("lowres_p", 0))):
            s = _low_res(s, _u(generator, *map(float, options["lowres"])))
        src.append(s)
        tgt.append(t)
        msk.append(m)
    return torch.stack(src), torch.stack(tgt), torch.stack(msk)
