"""Fixtures for the I/O tests: the real DICOM series read once, small helpers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from medxlate.io.dicom_read import read_dicom
from medxlate.io.volume import Volume


@pytest.fixture(scope="session")
def ct_dir(mridir) -> Path:
    return mridir / "ct"


@pytest.fixture(scope="session")
def mr_dir(mridir) -> Path:
    return mridir / "mr_t2"


@pytest.fixture(scope="session")
def ct_vol(ct_dir) -> Volume:
    return read_dicom(ct_dir)


@pytest.fixture(scope="session")
def mr_vol(mr_dir) -> Volume:
    return read_dicom(mr_dir)


def corners(vol: Volume) -> np.ndarray:
    """RAS world coordinates (mm) of the 8 corner voxels, in a fixed order of world position."""
    idx = np.array([[i, j, k] for i in (0, vol.shape[0] - 1) for j in (0, vol.shape[1] - 1)
                    for k in (0, vol.shape[2] - 1)], dtype=float)
    world = vol.world(idx)
    return world[np.lexsort(world.T[::-1])]


def copy_series(src: Path, dst: Path, prefix: str = "", skip: set[str] | None = None) -> Path:
    """Copy the DICOM files of ``src`` into ``dst`` (never modifying the shared data)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if skip and f.name in skip:
            continue
        shutil.copy(f, dst / f"{prefix}{f.name}")
    return dst


def world_matched(ref_array: np.ndarray, ref_affine: np.ndarray, affine: np.ndarray,
                  shape) -> np.ndarray:
    """``ref_array`` reordered onto the grid (affine, shape); the grids must coincide."""
    transform = np.linalg.inv(ref_affine) @ affine  # our voxel -> reference voxel
    signed_perm = np.round(transform[:3, :3])
    assert np.allclose(transform[:3, :3], signed_perm, atol=1e-3), "grids are not aligned"
    axes = [int(np.flatnonzero(signed_perm[:, a])[0]) for a in range(3)]
    out = ref_array.transpose(axes)
    for a, b in enumerate(axes):
        offset = transform[b, 3]
        if signed_perm[b, a] < 0:
            assert abs(offset - (shape[a] - 1)) < 1e-3
            out = np.flip(out, axis=a)
        else:
            assert abs(offset) < 1e-3
    assert out.shape == tuple(shape)
    return out
