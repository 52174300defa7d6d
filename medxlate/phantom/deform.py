"""Random spatial variation of a real label map: affine, smooth deformation, left-right flip.

A :class:`Warp` maps a point ``p`` of the generated subject (mm, the subject's CT world) to
the point of the label map it shows: ``q = c + A (p - c) + D(p)``, with ``A`` a random
rotation, scaling and shear (and a left-right flip) about the head centre ``c`` and ``D`` a
smooth displacement made of random plane waves (:class:`~medxlate.phantom.fields.WaveField`).
Images are *pulled* through it: every output voxel samples the map at ``q``, labels by
nearest neighbour, so a warped label map holds only labels of the original map.

Example:
    >>> import numpy as np
    >>> labels = np.zeros((6, 6, 6), np.float32); labels[2:4, 2:4, 2:4] = 7
    >>> out = warp_image(labels, np.eye(4), Warp.identity(), np.eye(4), (6, 6, 6), order=0)
    >>> bool(np.array_equal(out, labels))
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from medxlate.phantom.fields import WaveField, on_grid
from medxlate.phantom.transform import axis_angle


@dataclass(frozen=True)
class Warp:
    """q = center + matrix @ (p - center) + displacement(p), all in mm.

    Attributes:
        matrix: 3x3 linear part (rotation @ shear @ scaling @ flip).
        center: 3-vector, the fixed point of the linear part (mm).
        displacement: three WaveFields (x, y, z components, mm) or None.
        record: the drawn parameters, for truth.json.
    """

    matrix: np.ndarray
    center: np.ndarray
    displacement: tuple[WaveField, WaveField, WaveField] | None
    record: dict

    @classmethod
    def identity(cls) -> Warp:
        return cls(np.eye(3), np.zeros(3), None, {"identity": True})

    @classmethod
    def random(cls, rng: np.random.Generator, center, max_deg: float = 10.0,
               scale: tuple[float, float] = (0.9, 1.1), max_shear: float = 0.05,
               deformation_mm: float = 2.0, flip: bool = True) -> Warp:
        """Draw rotations about x, y, z uniform in +-max_deg, per-axis scales in ``scale``,
        shears in +-max_shear, a smooth displacement of RMS ``deformation_mm`` per axis
        (wavelengths 40-120 mm), and with ``flip`` a left-right mirror with probability 1/2."""
        angles = rng.uniform(-max_deg, max_deg, 3)
        rot = (axis_angle((1, 0, 0), angles[0]) @ axis_angle((0, 1, 0), angles[1])
               @ axis_angle((0, 0, 1), angles[2]))
        scales = rng.uniform(*scale, 3)
        shear = np.eye(3)
        shear[np.triu_indices(3, 1)] = rng.uniform(-max_shear, max_shear, 3)
        mirrored = bool(rng.random() < 0.5) if flip else False
        mirror = np.diag([-1.0 if mirrored else 1.0, 1.0, 1.0])
        fields = tuple(WaveField.random(rng, 8, (40.0, 120.0), deformation_mm) for _ in range(3))
        record = {"rotation_deg_xyz": angles.tolist(), "scale_xyz": scales.tolist(),
                  "shear_xy_xz_yz": shear[np.triu_indices(3, 1)].tolist(),
                  "left_right_flip": mirrored, "deformation_rms_mm": deformation_mm,
                  "deformation_max_mm": float(max(f.bound for f in fields)),
                  "center_mm": np.asarray(center, float).tolist()}
        matrix = rot @ shear @ np.diag(scales) @ mirror
        return cls(matrix, np.asarray(center, float), fields, record)

    @property
    def bound(self) -> float:
        """Largest displacement of the smooth part (mm)."""
        return 0.0 if self.displacement is None else max(f.bound for f in self.displacement)

    def affine(self) -> np.ndarray:
        """4x4 matrix of the linear part: q = affine @ [p, 1] + displacement(p)."""
        m = np.eye(4)
        m[:3, :3] = self.matrix
        m[:3, 3] = self.center - self.matrix @ self.center
        return m

    def inverse_box(self, points) -> tuple[np.ndarray, np.ndarray]:
        """Box of the subject points whose images are ``points`` (map mm, shape (N, 3)),
        widened by the largest displacement."""
        inv = np.linalg.inv(self.affine())
        pts = np.asarray(points, float) @ inv[:3, :3].T + inv[:3, 3]
        margin = self.bound * float(np.linalg.norm(inv[:3, :3], 2))
        return pts.min(0) - margin, pts.max(0) + margin


def source_coords(warp: Warp, out_index_to_subject, shape, source_affine) -> np.ndarray:
    """Voxel coordinates in the source map of every output voxel: (3, X, Y, Z) float32.

    Args:
        warp: the subject's warp.
        out_index_to_subject: 4x4 output voxel index -> subject mm.
        shape: output grid shape.
        source_affine: 4x4 source voxel index -> source mm (the label map's affine).
    """
    to_src = np.linalg.inv(np.asarray(source_affine, float))
    m = to_src @ warp.affine()

    def point_to_source(x, y, z):
        out = np.stack([np.float32(m[r, 0]) * x + np.float32(m[r, 1]) * y
                        + np.float32(m[r, 2]) * z + np.float32(m[r, 3]) for r in range(3)])
        if warp.displacement is not None:
            d = [field(x, y, z) for field in warp.displacement]
            for r in range(3):
                for axis in range(3):
                    if to_src[r, axis] != 0:
                        out[r] += np.float32(to_src[r, axis]) * d[axis]
        return out

    # The map is smooth (affine + long-wavelength waves): evaluate it every 4 voxels and
    # interpolate linearly, exact for the affine part (see fields.on_grid).
    coords = np.empty((3, *shape), np.float32)
    for r in range(3):
        coords[r] = on_grid(lambda x, y, z, r=r: point_to_source(x, y, z)[r], tuple(shape),
                            np.asarray(out_index_to_subject, float), step=4.0)
    return coords


def warp_image(image: np.ndarray, source_affine, warp: Warp, out_index_to_subject, shape,
               order: int = 1, cval: float = 0.0, coords: np.ndarray | None = None) -> np.ndarray:
    """Pull ``image`` (on the source grid) onto an output grid through ``warp``.

    ``order=0`` (nearest neighbour) for labels: the result holds only values of ``image``
    (and ``cval`` outside the source). Pass ``coords`` from :func:`source_coords` to reuse them.
    """
    if coords is None:
        coords = source_coords(warp, out_index_to_subject, shape, source_affine)
    src = image if image.dtype == np.float32 else image.astype(np.float32)
    return ndimage.map_coordinates(src, coords, order=order, mode="constant", cval=cval,
                                   prefilter=False)
