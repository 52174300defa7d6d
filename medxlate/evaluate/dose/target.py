"""The target (and body) of a plan on the reference grid: a mask file, an RTSTRUCT ROI, a
sphere or a label.

Example:
    >>> import numpy as np
    >>> from medxlate.io import Volume
    >>> ref = Volume(np.zeros((21, 21, 21), np.float32), np.eye(4))
    >>> int(sphere_mask(ref, (10.0, 10.0, 10.0), 3.0).sum())   # voxels within 3 mm
    123
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medxlate.errors import InputError
from medxlate.io import Volume

#: A target must lie inside the body: at most this share of it may fall outside.
MAX_OUTSIDE = 0.01


def sphere_mask(ref: Volume, center_mm, radius_mm: float) -> np.ndarray:
    """Voxels of ``ref`` whose centre lies within ``radius_mm`` of ``center_mm`` (RAS mm)."""
    idx = np.indices(ref.shape).reshape(3, -1).T
    d2 = np.sum((ref.world(idx) - np.asarray(center_mm, np.float64)) ** 2, axis=1)
    return (d2 <= radius_mm ** 2).reshape(ref.shape)


def rtstruct_file(path: Path, case_id: str) -> Path:
    """The RTSTRUCT of a subject: ``path`` itself, or ``<id>.dcm`` / ``<id>/`` 's only .dcm
    in a cohort folder."""
    path = Path(path)
    if not path.is_dir():
        return path
    if (path / f"{case_id}.dcm").is_file():
        return path / f"{case_id}.dcm"
    inside = sorted((path / case_id).glob("*.dcm")) if (path / case_id).is_dir() else []
    if len(inside) == 1:
        return inside[0]
    raise InputError(f"--target {path}: no RTSTRUCT {case_id}.dcm (or a single .dcm in "
                     f"{case_id}/)")


def target_mask(spec: dict | Path, ref: Volume, case_id: str, labels: np.ndarray | None,
                resample: bool, warnings: list[str] | None = None) -> np.ndarray:
    """Boolean target on ``ref``'s grid from a --target specification.

    An RTSTRUCT ROI is rasterised onto ``ref``'s grid (io.rtstruct); a note that its frame of
    reference could not be checked goes to ``warnings``.
    """
    if isinstance(spec, dict) and spec["kind"] == "rtstruct":
        from medxlate.io.rtstruct import read_rtstruct, roi_mask

        mask, notes = roi_mask(read_rtstruct(rtstruct_file(spec["path"], case_id)),
                               spec["roi"], ref)
        if warnings is not None:
            warnings.extend(notes)
        what = f"RTSTRUCT ROI {spec['roi']!r}"
    elif isinstance(spec, dict) and spec["kind"] == "sphere":
        mask = sphere_mask(ref, spec["center_mm"], spec["radius_mm"])
        what = f"sphere at {spec['center_mm']} mm, radius {spec['radius_mm']:g} mm"
    elif isinstance(spec, dict):
        if labels is None:
            raise InputError(f"--target label:{spec['label']}: subject {case_id} has no label "
                             "map (labels.nii.gz in its folder, or --labels)")
        mask = labels == spec["label"]
        what = f"label {spec['label']}"
    else:
        from medxlate.evaluate.geometry import check_overlap, check_same_grid, resample_to
        from medxlate.io import read_volume

        path = Path(spec)
        if path.is_dir():  # a folder of per-subject masks in cohort mode
            from medxlate.evaluate.pairs import _image_named

            found = _image_named(path, (case_id,)) or _image_named(path / case_id, ("target",))
            if found is None:
                raise InputError(f"--target {path}: no mask {case_id}.nii.gz or "
                                 f"{case_id}/target.nii.gz")
            path = found
        if not path.is_file():
            raise InputError(f"--target {path}: no such file")
        vol = read_volume(path)
        if resample:
            check_overlap(vol, ref, f"target {path}", "reference")
            vol = resample_to(vol, ref, order=0, fill=0.0)
        else:
            check_same_grid(vol, ref, f"target {path}", "reference")
        mask = vol.array > 0
        what = f"mask {path}"
    if not mask.any():
        raise InputError(f"target of {case_id} ({what}) is empty on the reference grid")
    return mask


def check_inside(target: np.ndarray, body: np.ndarray, case_id: str) -> None:
    """InputError when more than MAX_OUTSIDE of the target lies outside the body."""
    outside = float((target & ~body).sum()) / float(target.sum())
    if outside > MAX_OUTSIDE:
        raise InputError(f"target of {case_id}: {outside:.0%} of it lies outside the body mask "
                         f"(at most {MAX_OUTSIDE:.0%} allowed); place it inside the patient")
