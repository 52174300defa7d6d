"""A random MR contrast drawn from tissue labels (domain randomisation, SynthSeg-style).

Given a label map (any number of tissues, 0 = outside the body), :func:`random_contrast`
draws one plausible-looking MR acquisition that no scanner made: a random mean and spread
per tissue (the tissue ordering of T1w, T2w, PD, FLAIR... all occur), partial-volume blur,
a smooth multiplicative bias field, a thick-slice acquisition along a random axis (box slab,
sampled at a random phase every ``t`` mm and interpolated back, as ``synthesize`` resamples a
thick-slice series onto its grid), Rician noise and a random gamma. A model trained on such
images cannot rely on any one contrast (Billot et al., SynthSeg, Med Image Anal 2023;
Iglesias et al., SynthSR, Sci Adv 2023). docs/any-contrast.md lists the ranges.

Everything is numpy on the label array's own grid; the draws come from the ``rng`` given,
in a fixed order, so one seed gives one image.

Example:
    >>> import numpy as np
    >>> lab = np.zeros((5, 16, 16), np.int16); lab[:, 4:12, 4:12] = 1; lab[:, 6:10, 6:10] = 2
    >>> a = random_contrast(lab, (2.0, 2.0, 2.0), np.random.default_rng(0))
    >>> a.shape, bool((a[lab == 0] == 0).all()), bool((a >= 0).all())
    ((5, 16, 16), True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class ContrastRanges:
    """The ranges the draws come from (the ``augment.ac_*`` options of docs/any-contrast.md).

    Attributes:
        slice_mm: (min, max) slice thickness of the simulated acquisition (mm).
        bias: largest standard deviation of the log bias field.
        noise: largest Rician noise sigma, as a fraction of the brightest tissue mean.
        gamma: standard deviation of log(gamma).
        spread: largest within-tissue standard deviation, as a fraction of the intensity range.
    """

    slice_mm: tuple[float, float] = (1.0, 6.0)
    bias: float = 0.3
    noise: float = 0.05
    gamma: float = 0.25
    spread: float = 0.08

    @classmethod
    def from_options(cls, options: dict) -> ContrastRanges:
        return cls(slice_mm=tuple(float(v) for v in options.get("ac_slice_mm", (1.0, 6.0))),
                   bias=float(options.get("ac_bias", 0.3)),
                   noise=float(options.get("ac_noise", 0.05)),
                   gamma=float(options.get("ac_gamma", 0.25)),
                   spread=float(options.get("ac_spread", 0.08)))


def thick_slices(a: np.ndarray, axis: int, factor: float, phase: float) -> np.ndarray:
    """``a`` as acquired with slices ``factor`` voxels thick along ``axis`` and read back.

    The slab profile is a box of ``factor`` voxels (a Gaussian of the same FWHM, as SynthSR
    models it); slices are centred at ``phase + n * factor`` and every voxel is linearly
    interpolated between the two slices around it (edge slices held).
    """
    if factor <= 1.0:
        return a
    sigma = [0.0] * a.ndim
    sigma[axis] = factor / 2.3548
    blurred = ndimage.gaussian_filter(a, sigma, mode="nearest")
    n = a.shape[axis]
    centres = phase + factor * np.arange(-1, int(np.ceil(n / factor)) + 2)
    centres = centres[(centres >= -factor) & (centres <= n - 1 + factor)]
    picked = _linear_take(blurred, axis, np.clip(centres, 0, n - 1))
    # every voxel i between the slices around it: index into `centres`
    pos = np.interp(np.arange(n, dtype=np.float64), centres, np.arange(len(centres)))
    return _linear_take(picked, axis, pos)


def _linear_take(a: np.ndarray, axis: int, coords: np.ndarray) -> np.ndarray:
    lo = np.floor(coords).astype(int)
    hi = np.minimum(lo + 1, a.shape[axis] - 1)
    w = (coords - lo).astype(a.dtype)
    shape = [1] * a.ndim
    shape[axis] = len(coords)
    w = w.reshape(shape)
    return np.take(a, lo, axis=axis) * (1 - w) + np.take(a, hi, axis=axis) * w


def bias_field(shape, rng: np.random.Generator, std: float) -> np.ndarray:
    """exp of a smooth random field: Gaussian values on a coarse grid (2-4 control points per
    axis, fewer on short axes), linearly upsampled to ``shape``."""
    coarse = [2 if n < 8 else 4 for n in shape]
    field = rng.normal(0.0, std, size=coarse).astype(np.float32)
    for axis, (n, c) in enumerate(zip(shape, coarse)):  # separable linear upsampling
        field = np.moveaxis(np.tensordot(_upsample_matrix(n, c), field, axes=([1], [axis])),
                            0, axis)
    return np.exp(field)


def _upsample_matrix(n: int, c: int) -> np.ndarray:
    """(n, c) weights of linear interpolation from c control points spanning n voxels."""
    pos = np.linspace(0.0, c - 1.0, n)
    lo = np.minimum(np.floor(pos).astype(int), c - 2) if c > 1 else np.zeros(n, int)
    w = pos - lo
    m = np.zeros((n, c), np.float32)
    m[np.arange(n), lo] = 1.0 - w
    if c > 1:
        m[np.arange(n), lo + 1] += w
    return m


def random_contrast(labels: np.ndarray, spacing, rng: np.random.Generator,
                    ranges: ContrastRanges = ContrastRanges(),
                    axes: tuple[int, ...] = (0, 1, 2),
                    keep: tuple[int, int] | None = None) -> np.ndarray:
    """One random MR acquisition of ``labels`` (float32, >= 0, 0 where ``labels == 0``).

    Args:
        labels: integer tissue labels, 0 outside the body, any 3D shape.
        spacing: voxel size (mm) along the three axes.
        rng: the generator every draw comes from.
        ranges: the ranges of the draws.
        axes: the axes a thick-slice acquisition may lie along (the random orientation of
            the slice stack).
        keep: return only slices ``keep[0]:keep[1]`` of axis 0 (a training sample's context
            stack inside a taller label stack). Labels beyond them matter only when the
            thick slices lie along axis 0, so otherwise only a 2-slice margin is computed.
    """
    labels = np.asarray(labels)
    n_labels = int(labels.max()) + 1
    means = rng.uniform(0.0, 1.0, n_labels).astype(np.float32)
    spreads = (rng.uniform(0.0, ranges.spread, n_labels)).astype(np.float32)
    means[0] = spreads[0] = 0.0
    blur = rng.uniform(0.3, 1.0)
    bias_std = rng.uniform(0.0, ranges.bias)
    axis = int(axes[rng.integers(len(axes))])
    thickness = rng.uniform(*ranges.slice_mm)
    phase = rng.uniform(0.0, 1.0)
    noise = rng.uniform(0.0, ranges.noise)
    gamma = float(np.exp(rng.normal(0.0, ranges.gamma)))
    start, stop = keep if keep is not None else (0, labels.shape[0])
    factor = thickness / float(spacing[axis])
    # Only what reaches the kept slices is computed: along axis 0 the blur (~2 slices) or
    # the thick slices (1.5 thicknesses); in-plane, the body's box and a 4-voxel margin.
    reach = 2 if axis != 0 else int(np.ceil(1.5 * max(factor, 1.0))) + 2
    lo, hi = max(0, start - reach), min(labels.shape[0], stop + reach)
    full_shape = (stop - start, *labels.shape[1:])
    labels, start, stop = labels[lo:hi], start - lo, stop - lo
    inplane = _body_box(labels, margin=4 if axis == 0 else int(np.ceil(factor)) + 4)
    labels = labels[(slice(None), *inplane)]
    body = labels > 0
    img = means[labels]
    # within-tissue texture: uniform noise of standard deviation `spread` (a tenth of the
    # cost of Gaussian draws; its shape is lost in the blur that follows anyway)
    texture = rng.random(labels.shape, np.float32)
    texture -= np.float32(0.5)
    texture *= spreads[labels]
    texture *= np.float32(np.sqrt(12.0))
    img += texture
    img = ndimage.gaussian_filter(img, blur, mode="nearest", truncate=3.0)
    if axis != 0:  # nothing below mixes slices of axis 0: only the kept ones go on
        img, body, start, stop = img[start:stop], body[start:stop], 0, stop - start
    img *= bias_field(img.shape, rng, bias_std)
    img = thick_slices(img, axis, factor, phase * max(factor, 1.0))
    img, body = img[start:stop], body[start:stop]
    sigma = np.float32(noise * (float(means.max()) or 1.0))
    n1, n2 = rng.standard_normal((2, *img.shape), np.float32)
    n1 *= sigma
    n1 += img
    np.square(n1, out=n1)
    n2 *= sigma
    np.square(n2, out=n2)
    n1 += n2
    img = np.sqrt(n1, out=n1)  # Rician magnitude
    top = float(img[body].max()) if body.any() else 1.0
    img *= np.float32(1.0 / (top or 1.0))
    np.power(img, np.float32(gamma), out=img)
    img[~body] = 0.0
    out = np.zeros(full_shape, np.float32)
    out[(slice(None), *inplane)] = img
    return out


def _body_box(labels: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The in-plane box (axes 1, 2) holding every body voxel, widened by ``margin``."""
    if not labels.any():
        return slice(0, labels.shape[1]), slice(0, labels.shape[2])
    box = []
    for axis in (1, 2):
        hit = np.flatnonzero(labels.any(axis=tuple(a for a in (0, 1, 2) if a != axis)))
        box.append(slice(max(0, int(hit[0]) - margin),
                         min(labels.shape[axis], int(hit[-1]) + margin + 1)))
    return tuple(box)
