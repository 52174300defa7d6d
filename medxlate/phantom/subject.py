"""One paired MR/CT phantom subject: anatomy, grids, misalignment, CT and MR acquisition.

Frames (all RAS+ mm):

- *anatomy*: the subject's body, ``anatomy = ct_world - anatomy_origin_ct``; the template
  coordinates of a point are ``(anatomy + deformation(anatomy)) / scale``.
- *CT world*: world of ct.nii.gz; the CT grid is axis-aligned in it.
- *MR world*: world of mr.nii.gz; ``ct_world = mr_to_ct @ mr_world`` (a rigid transform with
  the drawn misalignment, rotating about the centre of the MR field of view).

Every random draw comes from a seed sequence of (seed, region, subject index) split into
independent streams for anatomy, geometry, CT and MR, so a subject is the same whatever the
number of workers, and options such as --contrast or --size leave its anatomy unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from medxlate import __version__
from medxlate.errors import UsageError
from medxlate.io import Volume
from medxlate.phantom import ct as ct_physics
from medxlate.phantom import mr as mr_physics
from medxlate.phantom.canvas import Canvas
from medxlate.phantom.fields import WaveField, on_grid
from medxlate.phantom.regions import REGIONS, region_spec
from medxlate.phantom.tissues import TISSUES, label_names, label_of
from medxlate.phantom.transform import misalignment_matrix, random_misalignment, to_lps

CONTRASTS = ("t1w", "t2w")
MAX_VOXELS = 80e6  # about 512 x 512 x 300: beyond this one subject needs several GB of memory
TRUTH_FORMAT = "medxlate-phantom-truth/1"


@dataclass
class PhantomConfig:
    """What to generate (the options of `medxlate phantom`).

    Attributes:
        region: "brain" or "pelvis".
        size: MR grid shape (X, Y, Z); None: the region's field of view / spacing.
        spacing: MR voxel size in mm; None: the region's field of view / size when size is
            given (the whole head or pelvis on a coarser or finer grid), else drawn per
            subject from the region's ranges.
        contrasts: MR contrasts to render, a subset of ("t1w", "t2w"); the first is mr.nii.gz.
        misalign_deg: largest rotation of the MR relative to the CT (degrees).
        misalign_mm: largest translation of the MR relative to the CT (mm).
        flip: add a 180-degree turn about the L-R or A-P axis to the misalignment.
        ct_on_mr: also resample the CT onto the MR grid through the true transform.
    """

    region: str = "brain"
    size: tuple[int, int, int] | None = None
    spacing: tuple[float, float, float] | None = None
    contrasts: tuple[str, ...] = ("t1w",)
    misalign_deg: float = 10.0
    misalign_mm: float = 10.0
    flip: bool = False
    ct_on_mr: bool = True


@dataclass
class Subject:
    """A generated subject: volumes on the MR grid, the CT grid, and the truth record."""

    id: str
    mr: dict[str, Volume]
    ct: Volume
    labels: Volume
    labels_ct: Volume
    mask: Volume
    truth: dict
    ct_on_mr: Volume | None = None
    extra: dict = field(default_factory=dict)


def _check_size(mr_size) -> None:
    if np.prod(mr_size, dtype=float) > MAX_VOXELS:
        raise UsageError(f"MR grid {tuple(mr_size)} has more than {MAX_VOXELS / 1e6:.0f} million "
                         "voxels; choose a smaller --size or a larger --spacing")


def check_config(config: PhantomConfig) -> None:
    """UsageError for a configuration that cannot be generated (before anything is written)."""
    spec = region_spec(config.region)
    if config.size is not None:
        _check_size(config.size)
    elif config.spacing is not None:
        _check_size([round(f / s) for f, s in zip(spec.fov_mm, config.spacing)])
    unknown = set(config.contrasts) - set(CONTRASTS)
    if not config.contrasts or unknown:
        raise UsageError(f"contrasts must be a non-empty subset of {CONTRASTS}")


def size_spacing(fov_mm, size) -> np.ndarray:
    """MR voxel size that fits ``size`` voxels across the field of view ``fov_mm`` (mm).

    Example:
        >>> size_spacing((230.0, 230.0, 180.0), (64, 64, 32)).tolist()
        [3.594, 3.594, 5.625]
    """
    return np.array([round(float(f) / int(n), 3) for f, n in zip(fov_mm, size)])


def subject_id(region: str, index: int) -> str:
    """Folder name of subject ``index`` (e.g. ``brain-000``)."""
    return f"{region}-{index:03d}"


def _streams(seed: int, region: str, index: int):
    code = sorted(REGIONS).index(region)
    seq = np.random.SeedSequence([int(seed), code, int(index)])
    return [np.random.default_rng(s) for s in seq.spawn(4)]


def _translate(t) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = t
    return m


def _grid_affine(spacing, size, center) -> np.ndarray:
    aff = np.diag([*spacing, 1.0])
    aff[:3, 3] = np.asarray(center) - np.asarray(spacing) * (np.asarray(size) - 1) / 2
    return aff


def _ct_grid(mr_affine, mr_size, mr_to_ct, mr_spacing, body_box, rng) -> tuple[np.ndarray, tuple]:
    """An axis-aligned CT grid covering the body inside the MR field of view, with a margin."""
    inplane = float(np.mean(mr_spacing[:2])) * rng.uniform(0.85, 1.15)
    slice_mm = float(np.clip(np.round(mr_spacing[2] * rng.uniform(0.8, 1.6) * 4) / 4, 1.0, 3.0))
    spacing = np.array([round(inplane, 4), round(inplane, 4), slice_mm])
    corners = np.array([[a, b, c] for a in (-0.5, mr_size[0] - 0.5)
                        for b in (-0.5, mr_size[1] - 0.5) for c in (-0.5, mr_size[2] - 0.5)])
    world = corners @ (mr_to_ct @ mr_affine)[:3, :3].T + (mr_to_ct @ mr_affine)[:3, 3]
    lo = np.maximum(world.min(0), body_box[0]) - rng.uniform(3, 15, 3)
    hi = np.minimum(world.max(0), body_box[1]) + rng.uniform(3, 15, 3)
    size = tuple(int(n) for n in np.ceil((hi - lo) / spacing))
    aff = np.diag([*spacing, 1.0])
    aff[:3, 3] = lo + spacing / 2
    return aff, size


def make_subject(config: PhantomConfig, seed: int, index: int) -> Subject:
    """Generate subject ``index`` of a cohort deterministically from ``seed``."""
    spec = region_spec(config.region)
    r_anat, r_geom, r_ct, r_mr = _streams(seed, config.region, index)

    # Anatomy: template parameters, global size and a smooth deformation.
    anatomy = spec.sample(r_anat)
    scale = (r_anat.uniform(0.92, 1.06) * r_anat.uniform(0.97, 1.03, 3)).tolist()
    deformation = [WaveField.random(r_anat, 8, (60.0, 160.0), 2.5) for _ in range(3)]
    marrow_field = WaveField.random(r_anat, 24, (6.0, 14.0), 1.0)

    # Geometry: MR grid, misalignment, CT grid.
    mr_spacing = (np.asarray(config.spacing, float) if config.spacing is not None
                  else spec.sample_mr_spacing(r_geom))
    if config.size is not None and config.spacing is None:
        # --size alone coarsens (or refines) the grid over the region's field of view; the
        # drawn spacing above still consumes its draw so the rest of the geometry is unchanged.
        mr_spacing = size_spacing(spec.fov_mm, config.size)
    mr_size = (tuple(int(n) for n in config.size) if config.size is not None
               else tuple(round(float(f / s)) for f, s in zip(spec.fov_mm, mr_spacing)))
    _check_size(mr_size)
    anatomy_origin_ct = r_geom.uniform(-25, 25, 3)
    fov_center_ct = (anatomy_origin_ct + np.asarray(spec.fov_center) * scale
                     + r_geom.uniform(-4, 4, 3))
    mis = random_misalignment(r_geom, config.misalign_deg, config.misalign_mm, config.flip)
    mr_to_ct = misalignment_matrix(mis, fov_center_ct)
    mr_center = np.linalg.inv(mr_to_ct) @ np.append(fov_center_ct, 1.0)
    mr_affine = _grid_affine(mr_spacing, mr_size, mr_center[:3])
    margin = max(f.bound for f in deformation)
    body_box = [anatomy_origin_ct + np.asarray(corner) * scale + sign * margin
                for corner, sign in zip(spec.body_box, (-1, 1))]
    ct_affine, ct_size = _ct_grid(mr_affine, mr_size, mr_to_ct, mr_spacing, body_box, r_geom)
    ct_to_anat = _translate(-anatomy_origin_ct)

    # CT: paint HU, then the scanner's blur and noise.
    hu_table = ct_physics.sample_hu(config.region, r_ct)
    scanner = ct_physics.sample_scanner(r_ct)
    canvas = Canvas(ct_size, ct_to_anat @ ct_affine, {"hu": hu_table}, deformation, scale)
    spec.paint(canvas, anatomy)
    marrow = marrow_fat_texture(canvas, marrow_field)
    canvas.channels["hu"] *= 1 - np.float32(0.25) * marrow
    ct_spacing = tuple(float(s) for s in np.diag(ct_affine)[:3])
    ct_array = ct_physics.acquire(canvas.channels["hu"], ct_spacing, scanner, r_ct)
    labels_ct = canvas.labels
    del canvas
    ct = Volume(ct_array, ct_affine, "CT")

    # MR: paint the noiseless signals, then bias, noise and gain per contrast.
    protocol = mr_physics.sample_protocol(r_mr)
    signals = mr_physics.tissue_signals(protocol, r_mr)
    wanted = [c for c in CONTRASTS if c in config.contrasts]
    canvas = Canvas(mr_size, ct_to_anat @ mr_to_ct @ mr_affine,
                    {c: signals[c] for c in wanted}, deformation, scale)
    spec.paint(canvas, anatomy)
    labels = canvas.labels
    if "t1w" in canvas.channels:
        canvas.channels["t1w"] *= 1 + np.float32(0.2) * marrow_fat_texture(canvas, marrow_field)
    present = np.unique(labels)
    mr, acquisition = {}, {}
    # Every contrast has its own stream, so that --contrast does not change the others.
    contrast_seeds = r_mr.integers(2**31, size=len(CONTRASTS))
    for c in wanted:
        rng_c = np.random.default_rng(int(contrast_seeds[CONTRASTS.index(c)]))
        reference = float(signals[c][present].max())
        image, acquisition[c] = mr_physics.acquire(canvas.channels[c], mr_affine, reference,
                                                   rng_c)
        mr[c] = Volume(image, mr_affine, "MR", {"contrast": c})
        canvas.channels[c] = None
    del canvas

    mask = ndimage.binary_dilation(labels != 0).astype(np.float32)
    ct_on_mr = resample_ct_to_mr(ct, mr_affine, mr_size, mr_to_ct) if config.ct_on_mr else None
    sid = subject_id(config.region, index)
    truth = {
        "format": TRUTH_FORMAT, "medxlate_version": __version__, "id": sid,
        "region": config.region, "seed": int(seed), "index": int(index),
        **geometry_record(mr_to_ct, fov_center_ct, mis, (mr_affine, mr_size),
                          (ct_affine, ct_size)),
        "anatomy": {"origin_in_ct_world_mm": anatomy_origin_ct.tolist(), "scale": scale,
                    "deformation_max_mm": max(f.bound for f in deformation),
                    "parameters": anatomy},
        "ct": {**scanner, "tissue_hu": _per_tissue(hu_table)},
        "mr": {**protocol, "contrasts": wanted, "mr_file_contrast": wanted[0],
               "tissue_signal": {c: _per_tissue(signals[c]) for c in wanted},
               "acquisition": acquisition},
        "labels": {str(k): v for k, v in label_names().items()},
        "hu_ranges": {t.name: list(t.hu_range) for t in TISSUES},
    }
    return Subject(
        id=sid, mr=mr, ct=ct,
        labels=Volume(labels.astype(np.float32), mr_affine, "unknown"),
        labels_ct=Volume(labels_ct.astype(np.float32), ct_affine, "unknown"),
        mask=Volume(mask, mr_affine, "unknown"), truth=truth, ct_on_mr=ct_on_mr)


def marrow_fat_texture(canvas: Canvas, field: WaveField) -> np.ndarray:
    """Local marrow fat fraction deviation in [-1, 1] inside cancellous bone, 0 elsewhere.

    Fattier marrow lowers the CT number and raises the T1w signal: the same anatomy-fixed
    field modulates both (CT by -25 %, T1w by +20 % at the extremes), as in real bone.
    """
    tex = np.zeros(canvas.shape, np.float32)
    inside = canvas.labels == label_of("cancellous_bone")
    if inside.any():
        values = on_grid(field, canvas.shape, canvas.index_to_anat, step=2.0)
        tex[inside] = np.clip(values[inside] / 1.5, -1, 1)
    return tex


def resample_ct_to_mr(ct: Volume, mr_affine, mr_size, mr_to_ct) -> Volume:
    """The CT on the MR grid through the true transform (trilinear, -1024 HU outside)."""
    index_map = np.linalg.inv(ct.affine) @ np.asarray(mr_to_ct) @ np.asarray(mr_affine)
    out = ndimage.affine_transform(ct.array, index_map[:3, :3], index_map[:3, 3],
                                   output_shape=tuple(mr_size), order=1, cval=-1024.0,
                                   prefilter=False)
    return Volume(out.astype(np.float32), mr_affine, "CT")


def geometry_record(mr_to_ct, center_ct, misalignment: dict, mr_grid, ct_grid) -> dict:
    """truth.json's "transform" and "grids": the known MR -> CT map and both grids."""
    return {
        "transform": {
            "mr_to_ct": mr_to_ct.tolist(), "ct_to_mr": np.linalg.inv(mr_to_ct).tolist(),
            "mr_to_ct_lps": to_lps(mr_to_ct).tolist(),
            "convention": "x_ct = mr_to_ct @ [x_mr, 1]: RAS+ world mm of mr.nii.gz -> RAS+ "
                          "world mm of ct.nii.gz (same anatomical point); mr_to_ct_lps is the "
                          "same map in LPS, i.e. an ITK transform registering CT (moving) onto "
                          "MR (fixed)",
            "rotation_center_ct_mm": center_ct.tolist(), **misalignment,
        },
        "grids": {"mr": _grid_record(*mr_grid), "ct": _grid_record(*ct_grid)},
    }


def _grid_record(affine, size) -> dict:
    return {"shape": list(size), "spacing_mm": [float(s) for s in np.diag(affine)[:3]],
            "affine": np.asarray(affine).tolist()}


def _per_tissue(values) -> dict:
    return {t.name: float(v) for t, v in zip(TISSUES, values)}
