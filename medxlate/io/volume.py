"""The one image type that flows through medxlate.

A :class:`Volume` holds a float32 array and an affine that maps voxel indices
``(i, j, k, 1)`` to world millimetres in RAS+ (the NIfTI/nibabel convention: +x towards
the patient's Right, +y Anterior, +z Superior). Readers return volumes whose voxel axes
are permuted and flipped to be closest to RAS+ (:meth:`Volume.canonical`), so that array
axis 0 is left-right, 1 posterior-anterior, 2 inferior-superior. LPS (DICOM, ITK)
conversion happens in the readers and writers of this package only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import nibabel as nib
import numpy as np

MODALITIES = ("CT", "MR", "unknown")


@dataclass
class Volume:
    """A 3D image with exact geometry.

    Args:
        array: voxel values, float32, shape (X, Y, Z); CT in HU.
        affine: 4x4 float64 voxel-index -> RAS world (mm) matrix.
        modality: "CT", "MR" or "unknown".
        meta: source metadata (e.g. DICOM patient/study tags needed to write a derived
            series, the source path). JSON-serialisable values only.

    Example:
        >>> v = Volume(np.zeros((2, 3, 4), np.float32), np.diag([1.0, 1.0, 2.5, 1.0]))
        >>> v.spacing, v.orientation
        ((1.0, 1.0, 2.5), 'RAS')
    """

    array: np.ndarray
    affine: np.ndarray
    modality: str = "unknown"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array, dtype=np.float32)
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.array.ndim != 3:
            raise ValueError(f"a Volume is 3D, got shape {self.array.shape}")
        if self.affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got {self.affine.shape}")
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along each array axis."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def origin(self) -> tuple[float, float, float]:
        """RAS world coordinate (mm) of voxel (0, 0, 0)."""
        return tuple(float(o) for o in self.affine[:3, 3])  # type: ignore[return-value]

    @property
    def direction(self) -> np.ndarray:
        """3x3 matrix of unit column vectors: RAS direction of each array axis."""
        return self.affine[:3, :3] / np.asarray(self.spacing)

    @property
    def orientation(self) -> str:
        """Three-letter code of the direction each axis increases towards (e.g. 'RAS')."""
        return "".join(nib.aff2axcodes(self.affine))

    def world(self, ijk: np.ndarray) -> np.ndarray:
        """RAS world coordinates (mm) of voxel indices, shape (..., 3)."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def with_array(self, array: np.ndarray, modality: str | None = None) -> Volume:
        """A new Volume with the same geometry and metadata and another array."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise ValueError(f"shape {array.shape} differs from the volume's {self.array.shape}")
        return Volume(array, self.affine.copy(), modality or self.modality, dict(self.meta))

    def same_grid(self, other: Volume, atol_mm: float = 1e-4) -> bool:
        """True when both volumes have the same shape and voxel-to-world mapping."""
        return self.shape == other.shape and bool(
            np.allclose(self.affine, other.affine, atol=atol_mm, rtol=0)
        )

    def canonical(self) -> Volume:
        """The same image with voxel axes permuted/flipped to be closest to RAS+.

        World coordinates of every voxel are unchanged; only the storage order changes.
        """
        ornt = nib.orientations.io_orientation(self.affine)
        ras = nib.orientations.axcodes2ornt(("R", "A", "S"))
        transform = nib.orientations.ornt_transform(ornt, ras)
        if np.array_equal(transform, ras):  # already canonical: [[0,1],[1,1],[2,1]]
            return self
        array = nib.orientations.apply_orientation(self.array, transform)
        affine = self.affine @ nib.orientations.inv_ornt_aff(transform, self.array.shape)
        return Volume(np.ascontiguousarray(array), affine, self.modality, dict(self.meta))
