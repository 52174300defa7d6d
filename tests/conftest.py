"""Shared fixtures: paths to real test data."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
MRIDIR = SHARED_DATA / "mridir-subset"


@pytest.fixture(scope="session")
def mridir() -> Path:
    """../shared/data/mridir-subset (real GE CT and T2 MR DICOM)."""
    if not MRIDIR.is_dir():
        pytest.skip(f"shared data not found at {MRIDIR}")
    return MRIDIR
