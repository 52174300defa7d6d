"""Approximate signed distance functions (mm, negative inside) of the anatomical primitives.

All functions take coordinate arrays ``x, y, z`` (float32, any shape, anatomy frame in mm)
and return an array of the same shape. Distances are first-order approximations
(value / gradient norm), exact on the surface, which is what partial-volume edges need.
"""

from __future__ import annotations

import numpy as np

EPS = np.float32(1e-6)


def rotation(rx_deg: float = 0.0, ry_deg: float = 0.0, rz_deg: float = 0.0) -> np.ndarray:
    """3x3 rotation R = Rz @ Ry @ Rx (angles in degrees, right-handed about x, y, z)."""
    ax, ay, az = np.deg2rad([rx_deg, ry_deg, rz_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _local(x, y, z, center, rot):
    """Coordinates relative to ``center`` in the primitive's own axes (rot maps local->anat)."""
    dx, dy, dz = x - np.float32(center[0]), y - np.float32(center[1]), z - np.float32(center[2])
    if rot is None:
        return dx, dy, dz
    r = np.asarray(rot, dtype=np.float32)
    # local = R^T @ d
    return (r[0, 0] * dx + r[1, 0] * dy + r[2, 0] * dz,
            r[0, 1] * dx + r[1, 1] * dy + r[2, 1] * dz,
            r[0, 2] * dx + r[1, 2] * dy + r[2, 2] * dz)


def ellipsoid(x, y, z, center, axes, rot=None):
    """Ellipsoid with semi-axes ``axes`` (mm): (rho - 1) / |grad rho|, rho the normalised radius."""
    u, v, w = _local(x, y, z, center, rot)
    a, b, c = (np.float32(s) for s in axes)
    u, v, w = u / a, v / b, w / c
    rho = np.sqrt(u * u + v * v + w * w)
    grad = np.sqrt((u / a) ** 2 + (v / b) ** 2 + (w / c) ** 2)
    return (rho - 1) * rho / (grad + EPS)


def sphere(x, y, z, center, radius):
    """Exact signed distance to a sphere."""
    dx, dy, dz = x - np.float32(center[0]), y - np.float32(center[1]), z - np.float32(center[2])
    return np.sqrt(dx * dx + dy * dy + dz * dz) - np.float32(radius)


def capsule(x, y, z, a, b, radius):
    """Exact signed distance to a capsule (segment a-b swept by a sphere of ``radius``)."""
    # With equal end radii the taper term is exactly zero, so the distance is exact.
    return tapered_capsule(x, y, z, a, b, radius, radius)


def tapered_capsule(x, y, z, a, b, ra, rb):
    """A capsule whose radius goes linearly from ``ra`` at ``a`` to ``rb`` at ``b`` (approx.)."""
    a = np.asarray(a, dtype=np.float32)
    ab = np.asarray(b, dtype=np.float32) - a
    length2 = np.float32(ab @ ab)
    px, py, pz = x - a[0], y - a[1], z - a[2]
    t = np.clip((px * ab[0] + py * ab[1] + pz * ab[2]) / length2, 0, 1)
    dx, dy, dz = px - t * ab[0], py - t * ab[1], pz - t * ab[2]
    return np.sqrt(dx * dx + dy * dy + dz * dz) - (np.float32(ra) + t * np.float32(rb - ra))


def superellipse_column(x, y, z, center_xy, axes_xy, power):
    """An infinite column along z with a superelliptic cross-section |x/a|^n + |y/b|^n = 1.

    ``axes_xy`` may be arrays broadcastable to ``z`` (semi-axes varying along the body).
    """
    a, b = axes_xy
    u = np.abs(x - np.float32(center_xy[0])) / a
    v = np.abs(y - np.float32(center_xy[1])) / b
    n = np.float32(power)
    un, vn = u ** n, v ** n
    rho = (un + vn) ** (1 / n)
    # gradient of rho: rho^(1-n) * (u^(n-1)/a, v^(n-1)/b)
    gu, gv = un / (u + EPS) / a, vn / (v + EPS) / b
    grad = rho ** (1 - n) * np.sqrt(gu * gu + gv * gv)
    return (rho - 1) / (grad + EPS)


def smooth_union(d1, d2, k: float):
    """Polynomial smooth minimum of two distances (blend radius ``k`` mm; Quilez 2013)."""
    k = np.float32(k)
    h = np.clip(0.5 + 0.5 * (d2 - d1) / k, 0, 1)
    return d2 + (d1 - d2) * h - k * h * (1 - h)


def occupancy(sd, edge_mm: float):
    """Partial-volume fraction of a voxel whose centre is ``sd`` mm from a surface.

    A linear ramp over one voxel width: 1 deep inside, 0 outside, 0.5 on the surface, so a
    voxel gets the label of the tissue containing its centre exactly when occupancy >= 0.5.
    """
    return np.clip(np.float32(0.5) - sd * np.float32(1.0 / edge_mm), 0, 1)


def box_ellipsoid(center, axes) -> tuple[np.ndarray, np.ndarray]:
    """A box holding an ellipsoid in any orientation."""
    r = float(np.max(axes))
    return np.subtract(center, r), np.add(center, r)


def box_capsule(a, b, radius) -> tuple[np.ndarray, np.ndarray]:
    """The bounding box of a capsule."""
    return np.minimum(a, b) - radius, np.maximum(a, b) + radius
