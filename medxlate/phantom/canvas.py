"""Render an analytic anatomy onto any voxel grid, with partial-volume edges.

A :class:`Canvas` holds, for every voxel centre of one grid, its position in the subject's
anatomy template (after the subject's smooth deformation), one image per *channel* (e.g.
CT HU, T1w and T2w signal) and a label map. Anatomy modules *paint* tissues in order: a
tissue with occupancy ``o`` in a voxel replaces that fraction of what is there,
``v <- (1 - o) v + o value[tissue]`` per channel, which mixes tissues linearly as partial
volume does in both CT (attenuation) and MR (magnetisation). The voxel gets the tissue's
label when the tissue contains its centre (``o >= 0.5``).
"""

from __future__ import annotations

import itertools

import numpy as np

from medxlate.phantom.fields import on_grid
from medxlate.phantom.shapes import occupancy, smooth_union


class Canvas:
    """One grid being painted.

    Args:
        shape: grid shape (X, Y, Z).
        index_to_anat: 4x4 matrix from voxel index to anatomy-frame mm (before deformation).
        tables: channel name -> per-label value array (length = number of labels).
        deformation: three :class:`WaveField` (x, y, z displacement in mm, a function of the
            anatomy position) or None; template position = position + displacement.
        scale: per-axis size factors of the subject (template = anatomy / scale).
        edge_mm: width of the partial-volume ramp (default: geometric-mean voxel size).
    """

    def __init__(self, shape, index_to_anat, tables, deformation=None, scale=(1.0, 1.0, 1.0),
                 edge_mm: float | None = None) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.index_to_anat = np.asarray(index_to_anat, dtype=np.float64)
        spacing = np.linalg.norm(self.index_to_anat[:3, :3], axis=0)
        self.edge = float(edge_mm or np.prod(spacing) ** (1 / 3))
        self.scale = np.asarray(scale, dtype=np.float64)
        self.tables = {k: np.asarray(v, dtype=np.float32) for k, v in tables.items()}
        self.channels = {k: np.full(self.shape, v[0], np.float32) for k, v in self.tables.items()}
        self.labels = np.zeros(self.shape, np.uint8)
        self.margin = 0.0
        m = self.index_to_anat
        i, j, k = (np.arange(n, dtype=np.float32) for n in self.shape)
        coords = []
        for row in range(3):
            c = (np.float32(m[row, 0]) * i[:, None, None] + np.float32(m[row, 1]) * j[None, :, None]
                 + np.float32(m[row, 2]) * k[None, None, :] + np.float32(m[row, 3]))
            coords.append(c.astype(np.float32, copy=False))
        if deformation is not None:
            self.margin = max(f.bound for f in deformation)
            for row, field in enumerate(deformation):
                coords[row] += on_grid(field, self.shape, m, step=4.0)
        for row in range(3):
            coords[row] /= np.float32(self.scale[row])
        self.x, self.y, self.z = coords
        self._to_index = np.linalg.inv(self.index_to_anat)

    def block(self, lo, hi) -> tuple[slice, slice, slice] | None:
        """Index slices of the voxels whose template position may lie in the box [lo, hi].

        Returns None when the box misses the grid.
        """
        lo = np.asarray(lo, float) * self.scale - self.margin - 2 * self.edge
        hi = np.asarray(hi, float) * self.scale + self.margin + 2 * self.edge
        corners = np.array(list(itertools.product(*zip(lo, hi))))
        ijk = corners @ self._to_index[:3, :3].T + self._to_index[:3, 3]
        start = np.floor(ijk.min(0)).astype(int)
        stop = np.ceil(ijk.max(0)).astype(int) + 1
        start = np.maximum(start, 0)
        stop = np.minimum(stop, self.shape)
        if np.any(stop <= start):
            return None
        return tuple(slice(int(a), int(b)) for a, b in zip(start, stop))

    def sub_block(self, lo, hi, within) -> tuple[slice, slice, slice] | None:
        """:meth:`block` of the box [lo, hi] intersected with the block ``within``."""
        sl = self.block(lo, hi)
        if sl is None:
            return None
        out = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(sl, within))
        return None if any(s.stop <= s.start for s in out) else out

    def local_sd(self, within, lo, hi, func, far: float = 1e4) -> np.ndarray:
        """A signed distance over block ``within``, evaluated only inside the box [lo, hi].

        Voxels outside the box get ``far``: right for unions and for painting as long as
        the box holds the primitive plus any blending radius used with it.
        """
        out = np.full(tuple(s.stop - s.start for s in within), far, np.float32)
        sl = self.sub_block(lo, hi, within)
        if sl is not None:
            rel = tuple(slice(a.start - w.start, a.stop - w.start) for a, w in zip(sl, within))
            out[rel] = func(*self.coords(sl))
        return out

    def union_into(self, sd: np.ndarray, within, box, func, blend: float = 0.0) -> None:
        """Union (smooth with radius ``blend`` mm) of a primitive into ``sd`` over ``within``.

        The primitive is evaluated only inside its bounding ``box`` (low, high) grown by
        the blend radius; elsewhere it cannot change a surface.
        """
        lo, hi = np.subtract(box[0], blend + 1), np.add(box[1], blend + 1)
        sl = self.sub_block(lo, hi, within)
        if sl is None:
            return
        rel = tuple(slice(a.start - w.start, a.stop - w.start) for a, w in zip(sl, within))
        value = func(*self.coords(sl))
        sd[rel] = smooth_union(sd[rel], value, blend) if blend else np.minimum(sd[rel], value)

    def paint_local(self, label: int, within, box, func, clamp: np.ndarray | None = None):
        """Paint the primitive ``func`` (a signed distance) inside its bounding ``box`` only."""
        sl = self.sub_block(np.subtract(box[0], 2), np.add(box[1], 2), within)
        if sl is None:
            return
        occ = occupancy(func(*self.coords(sl)), self.edge)
        if clamp is not None:
            occ = np.minimum(occ, clamp[sl])
        self.paint(label, occ, sl)

    def smooth_field(self, func) -> np.ndarray:
        """A smooth function of the anatomy position (not the template), over the whole grid."""
        return on_grid(func, self.shape, self.index_to_anat, step=4.0)

    def coords(self, sl) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Template coordinates (x, y, z mm) of the voxels in a block."""
        return self.x[sl], self.y[sl], self.z[sl]

    def paint(self, label: int, occ: np.ndarray, sl, where: np.ndarray | None = None) -> None:
        """Paint tissue ``label`` with occupancy ``occ`` over block ``sl``.

        Args:
            label: tissue label.
            occ: occupancy in [0, 1], shape of the block (or of ``where.sum()`` with ``where``).
            sl: block slices from :meth:`block`.
            where: optional boolean mask of the block that ``occ`` is given for.
        """
        for name, arr in self.channels.items():
            value = self.tables[name][label]
            view = arr[sl]
            if where is None:
                view += occ * (value - view)
            else:
                sub = view[where]
                view[where] = sub + occ * (value - sub)
        lab = self.labels[sl]
        if where is None:
            lab[occ >= 0.5] = label
        else:
            sub = lab[where]
            sub[occ >= 0.5] = label
            lab[where] = sub
