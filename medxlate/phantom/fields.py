"""Smooth random fields defined in continuous space (sums of random plane waves).

A field is an analytic function of world position, so it has the same value at a point
whatever grid samples it: the deformation of a subject is identical on the CT and MR grids.
Smooth fields are evaluated on a coarse version of a grid and upsampled linearly
(:func:`on_grid`), which is exact to a few hundredths of a millimetre for wavelengths
much longer than the coarse step and keeps rendering fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WaveField:
    """f(p) = sum_j a_j cos(k_j . p + phi_j), p in mm.

    Attributes:
        k: (J, 3) wave vectors in rad/mm.
        phase: (J,) phases.
        amp: (J,) amplitudes.
    """

    k: np.ndarray
    phase: np.ndarray
    amp: np.ndarray

    @classmethod
    def random(cls, rng: np.random.Generator, n_waves: int, wavelength_mm: tuple[float, float],
               rms: float) -> WaveField:
        """Random isotropic field with wavelengths uniform in ``wavelength_mm`` and given RMS."""
        direction = rng.normal(size=(n_waves, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        wavelength = rng.uniform(*wavelength_mm, size=n_waves)
        k = direction * (2 * np.pi / wavelength)[:, None]
        phase = rng.uniform(0, 2 * np.pi, size=n_waves)
        amp = np.full(n_waves, rms * np.sqrt(2.0 / n_waves))
        return cls(k, phase, amp)

    @property
    def bound(self) -> float:
        """Largest possible |f|."""
        return float(np.abs(self.amp).sum())

    def __call__(self, x, y, z) -> np.ndarray:
        out = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z)), np.float32)
        for (kx, ky, kz), ph, a in zip(self.k.astype(np.float32), self.phase, self.amp):
            out += np.float32(a) * np.cos(kx * x + ky * y + kz * z + np.float32(ph))
        return out

    def value_and_grad_norm(self, x, y, z) -> tuple[np.ndarray, np.ndarray]:
        """f and |grad f| (per mm) at the points."""
        f = np.zeros(np.shape(x), np.float32)
        gx, gy, gz = (np.zeros(np.shape(x), np.float32) for _ in range(3))
        for (kx, ky, kz), ph, a in zip(self.k.astype(np.float32), self.phase, self.amp):
            arg = kx * x + ky * y + kz * z + np.float32(ph)
            f += np.float32(a) * np.cos(arg)
            s = np.float32(-a) * np.sin(arg)
            gx += s * kx
            gy += s * ky
            gz += s * kz
        return f, np.sqrt(gx * gx + gy * gy + gz * gz)


def on_grid(func, shape: tuple[int, int, int], index_to_point: np.ndarray,
            step: float = 4.0) -> np.ndarray:
    """Evaluate a smooth function of position on a grid through a coarse grid.

    Args:
        func: callable (x, y, z) -> array, with coordinates in the frame of ``index_to_point``.
        shape: grid shape.
        index_to_point: 4x4 matrix from voxel index (i, j, k, 1) to the function's frame.
        step: coarse sampling step in voxels.

    Returns:
        float32 array of ``shape``: ``func`` sampled at every voxel centre (trilinear between
        coarse samples placed exactly on voxel centres, first and last included).
    """
    counts = [max(2, int(np.ceil((n - 1) / step)) + 1) if n > 1 else 1 for n in shape]
    axes = [np.linspace(0, n - 1, m) for n, m in zip(shape, counts)]
    i, j, k = np.meshgrid(*axes, indexing="ij")
    m = index_to_point
    x = (m[0, 0] * i + m[0, 1] * j + m[0, 2] * k + m[0, 3]).astype(np.float32)
    y = (m[1, 0] * i + m[1, 1] * j + m[1, 2] * k + m[1, 3]).astype(np.float32)
    z = (m[2, 0] * i + m[2, 1] * j + m[2, 2] * k + m[2, 3]).astype(np.float32)
    coarse = np.asarray(func(x, y, z), dtype=np.float32)
    if tuple(coarse.shape) == tuple(shape):
        return coarse
    out = coarse
    for axis in (2, 1, 0):  # smallest result first
        out = _upsample_axis(out, axis, shape[axis])
    return out


def _upsample_axis(a: np.ndarray, axis: int, n: int) -> np.ndarray:
    """Linear interpolation along ``axis`` from m samples at linspace(0, n-1, m) to n."""
    m = a.shape[axis]
    if m == n:
        return a
    pos = np.arange(n) * ((m - 1) / (n - 1))
    lo = np.minimum(pos.astype(int), m - 2)
    w = (pos - lo).astype(np.float32)
    if axis == 0:  # the largest output: fill it slab by slab (two passes, cache friendly)
        diff = a[1:] - a[:-1]
        out = np.empty((n, *a.shape[1:]), np.float32)
        for i in range(n):
            np.multiply(diff[lo[i]], w[i], out=out[i])
            out[i] += a[lo[i]]
        return out
    shape = [1, 1, 1]
    shape[axis] = n
    w = w.reshape(shape)
    first = np.take(a, lo, axis=axis)
    return first + w * (np.take(a, lo + 1, axis=axis) - first)
