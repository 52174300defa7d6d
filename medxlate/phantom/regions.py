"""The body regions a phantom can show, and their acquisition defaults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from medxlate.errors import UsageError
from medxlate.phantom import head, pelvis


@dataclass(frozen=True)
class RegionSpec:
    """How to draw and paint one region, and where the MR field of view sits.

    Attributes:
        name: region name.
        sample: rng -> per-subject anatomical parameters.
        paint: (canvas, parameters) -> None.
        fov_center: MR field-of-view centre in the template frame (mm).
        fov_mm: default MR field of view (mm) when --size is not given.
        inplane_mm: range of the MR in-plane voxel size drawn per subject.
        slice_mm: range of the MR slice thickness drawn per subject.
        body_box: (low, high) corners of a box holding the whole body in the template frame
            (the CT field of view never extends beyond it plus a margin).
    """

    name: str
    sample: Callable
    paint: Callable
    fov_center: tuple[float, float, float]
    fov_mm: tuple[float, float, float]
    inplane_mm: tuple[float, float]
    slice_mm: tuple[float, float]
    body_box: tuple[tuple[float, float, float], tuple[float, float, float]]

    def sample_mr_spacing(self, rng: np.random.Generator) -> np.ndarray:
        inplane = round(float(rng.uniform(*self.inplane_mm)), 3)
        return np.array([inplane, inplane, round(float(rng.uniform(*self.slice_mm)), 2)])


REGIONS = {
    "brain": RegionSpec("brain", head.sample_head, head.paint_head, head.FOV_CENTER,
                        head.FOV_MM, (0.9, 1.2), (1.0, 1.6),
                        ((-90, -115, -300), (90, 125, 95))),
    "pelvis": RegionSpec("pelvis", pelvis.sample_pelvis, pelvis.paint_pelvis,
                         pelvis.FOV_CENTER, pelvis.FOV_MM, (1.2, 1.6), (2.5, 4.0),
                         ((-240, -170, -500), (240, 150, 400))),
}


def region_spec(name: str) -> RegionSpec:
    """The spec of a region name; UsageError for an unknown one."""
    if name not in REGIONS:
        raise UsageError(f"unknown region {name!r}; choose one of {', '.join(sorted(REGIONS))}")
    return REGIONS[name]
