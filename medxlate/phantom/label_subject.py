"""One paired MR/CT subject simulated from a real anatomical label map.

Frames (RAS+ mm): the *map* world (the label map's own), the *subject* world = CT world
(the CT grid is axis-aligned in it; ``map point = warp(subject point)``, see
:mod:`medxlate.phantom.deform`), and the MR world (``ct_world = mr_to_ct @ mr_world``, the
drawn rigid misalignment, as in the procedural phantoms). Every random draw comes from a seed
sequence of (seed, index) split into streams for the anatomy (warp, tissue fields), the
geometry (grids, misalignment, MR resolution), the CT and the MR (one per contrast), so that
a subject is the same whatever the number of workers, and --contrast leaves the anatomy, CT
and other contrasts unchanged. Subject i uses map i mod (number of maps in the split).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from medxlate import __version__
from medxlate.errors import UsageError
from medxlate.io import Volume
from medxlate.phantom import ct as ct_physics
from medxlate.phantom import label_ct, label_mr
from medxlate.phantom import mr as mr_physics
from medxlate.phantom.deform import Warp, source_coords, warp_image
from medxlate.phantom.labels import (CLASS_BY_NAME, CLASS_NAMES, CLASSES, class_lut, find_maps,
                                     load_map, scheme, split_maps)
from medxlate.phantom.subject import (TRUTH_FORMAT, Subject, _check_size, _ct_grid, _grid_affine,
                                      geometry_record, resample_ct_to_mr, size_spacing, subject_id)
from medxlate.phantom.transform import misalignment_matrix, random_misalignment

ALL_CONTRASTS = ("t1w", "t2w", "pdw", "flair", "random")
SEED_TAG = 29  # separates label-phantom streams from the procedural regions' (0, 1)


@dataclass
class LabelPhantomConfig:
    """What to generate from label maps (the options of `medxlate phantom --labels`).

    Attributes:
        labels: a label map file or a folder of them.
        label_scheme: "synthseg", "freesurfer", "brainweb" or a YAML file path.
        split: "all", "train" (all but the last 20 % of the maps by name) or "held-out".
        mr_mode: "realistic" or "random".
        contrasts: realistic contrasts, a subset of ("t1w", "t2w", "pdw", "flair"); the first
            is mr.nii.gz. Random mode renders one image ("random").
        size, spacing: MR grid as in :class:`~medxlate.phantom.subject.PhantomConfig`
            (spacing drawn per subject, 0.9-1.2 mm, when neither is given).
        misalign_deg, misalign_mm: largest rigid MR->CT misalignment.
        lr_flip: mirror left-right with probability 1/2.
        deformation_mm: RMS of the smooth random deformation per axis (0: affine only).
        ct_on_mr: also resample the CT onto the MR grid through the true transform.
    """

    labels: Path
    label_scheme: str = "synthseg"
    split: str = "all"
    mr_mode: str = "realistic"
    contrasts: tuple[str, ...] = ("t1w",)
    size: tuple[int, int, int] | None = None
    spacing: tuple[float, float, float] | None = None
    misalign_deg: float = 10.0
    misalign_mm: float = 10.0
    lr_flip: bool = True
    deformation_mm: float = 2.0
    ct_on_mr: bool = True
    region: str = "head"

    def maps(self) -> list[Path]:
        return split_maps(find_maps(self.labels), self.split)


def check_label_config(config: LabelPhantomConfig) -> None:
    """Refuse, before anything is written, what cannot be generated: unknown scheme, no maps,
    a map the scheme cannot read (every map of the split is loaded and checked)."""
    scheme(config.label_scheme)
    unknown = set(config.contrasts) - set(ALL_CONTRASTS[:-1])
    if not config.contrasts or unknown:
        raise UsageError(f"contrasts must be a non-empty subset of {ALL_CONTRASTS[:-1]}")
    if config.size is not None:
        _check_size(config.size)
    for path in config.maps():
        load_map(str(Path(path).resolve()), str(config.label_scheme))


def _streams(seed: int, index: int):
    seq = np.random.SeedSequence([int(seed), SEED_TAG, int(index)])
    return [np.random.default_rng(s) for s in seq.spawn(4)]


def _crop(labels: np.ndarray, affine: np.ndarray, margin: int = 4):
    """The map cropped to its non-zero box plus margin, and the cropped grid's affine."""
    nz = [np.flatnonzero(labels.any(axis=tuple(a for a in range(3) if a != ax)))
          for ax in range(3)]
    lo = [max(int(n[0]) - margin, 0) for n in nz]
    hi = [min(int(n[-1]) + margin + 1, s) for n, s in zip(nz, labels.shape)]
    crop = labels[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    shift = np.eye(4)
    shift[:3, 3] = lo
    return crop, affine @ shift


def inner_air(classes: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Background voxels enclosed by tissue within their axial slice (sinuses, airways)."""
    axial = int(np.argmax(np.abs(affine[2, :3])))
    structure = np.zeros((3, 3, 3), bool)
    index = [slice(None)] * 3
    index[axial] = 1
    structure[tuple(index)] = ndimage.generate_binary_structure(2, 1)
    outside = np.pad(classes == 0, 1, constant_values=True)
    comp, _ = ndimage.label(outside, structure=structure)
    border = [a for a in range(3) if a != axial]
    touching = set()
    for a in border:
        for edge in (0, -1):
            touching.update(np.unique(np.take(comp, edge, axis=a)).tolist())
    touch = np.zeros(comp.max() + 1, bool)
    touch[list(touching)] = True
    enclosed = (comp > 0) & ~touch[comp]
    return enclosed[1:-1, 1:-1, 1:-1]


def _source(config: LabelPhantomConfig, index: int):
    maps = config.maps()
    path = maps[index % len(maps)]
    labels, affine = load_map(str(Path(path).resolve()), str(config.label_scheme))
    labels, affine = _crop(labels, affine)
    lut = class_lut(scheme(config.label_scheme))
    classes = lut[labels]
    inner = inner_air(classes, affine)
    classes[inner] = CLASS_BY_NAME["air"].id
    codes = labels.astype(np.float32)
    codes[inner] = -1  # warped once, then split into map labels and classes (_split_codes)
    return path, codes, classes, affine, lut


def _split_codes(codes: np.ndarray, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(map labels as float32, uint8 classes) of warped codes (-1: air inside the head)."""
    ints = codes.astype(np.int32)
    inner = ints < 0
    ints[inner] = 0
    classes = lut[ints]
    classes[inner] = CLASS_BY_NAME["air"].id
    return ints.astype(np.float32), classes


def _surface_points(labels: np.ndarray, affine: np.ndarray, step: int = 3) -> np.ndarray:
    """Map mm of the non-zero voxels of a subsampled map (enough to bound the head)."""
    idx = np.argwhere(labels[::step, ::step, ::step] > 0) * step
    return idx @ affine[:3, :3].T + affine[:3, 3]


def _mr_geometry(config, body_lo, body_hi, r_geom):
    if config.spacing is not None:
        spacing = np.asarray(config.spacing, float)
    else:
        spacing = np.full(3, round(float(r_geom.uniform(0.9, 1.2)), 3))
    extent = (body_hi - body_lo) * r_geom.uniform(0.85, 1.1, 3)
    center = (body_lo + body_hi) / 2 + r_geom.uniform(-8, 8, 3)
    if config.size is not None:
        size = tuple(int(n) for n in config.size)
        if config.spacing is None:
            spacing = size_spacing(extent, size)
    else:
        size = tuple(max(8, int(round(e / s))) for e, s in zip(extent, spacing))
    _check_size(size)
    return spacing, size, center


def make_label_subject(config: LabelPhantomConfig, seed: int, index: int) -> Subject:
    """Generate subject ``index`` of a real-anatomy cohort deterministically from ``seed``."""
    path, codes, classes, src_affine, lut = _source(config, index)
    r_anat, r_geom, r_ct, r_mr = _streams(seed, index)
    src_spacing = np.linalg.norm(src_affine[:3, :3], axis=0)

    # Anatomy: warp about the head centre, tissue fields fixed to the map.
    lo_mm = src_affine[:3, 3]
    hi_mm = src_affine[:3, :3] @ (np.array(codes.shape) - 1) + src_affine[:3, 3]
    lo_mm, hi_mm = np.minimum(lo_mm, hi_mm), np.maximum(lo_mm, hi_mm)
    warp = Warp.random(r_anat, (lo_mm + hi_mm) / 2, flip=config.lr_flip,
                       deformation_mm=config.deformation_mm)
    fields = label_ct.sample_fields(r_anat)
    fat_mean = float(r_anat.uniform(0.2, 0.6))

    # Geometry: MR grid, misalignment, CT grid, MR resolution.
    body_lo, body_hi = warp.inverse_box(_surface_points(codes, src_affine))
    mr_spacing, mr_size, fov_center = _mr_geometry(config, body_lo, body_hi, r_geom)
    mis = random_misalignment(r_geom, config.misalign_deg, config.misalign_mm, False)
    mr_to_ct = misalignment_matrix(mis, fov_center)
    mr_center = np.linalg.inv(mr_to_ct) @ np.append(fov_center, 1.0)
    mr_affine = _grid_affine(mr_spacing, mr_size, mr_center[:3])
    ct_affine, ct_size = _ct_grid(mr_affine, mr_size, mr_to_ct, mr_spacing,
                                  [body_lo, body_hi], r_geom)
    resolution = label_mr.sample_resolution(r_geom)

    # CT: paint HU on the map grid, pull onto the CT grid, then the scanner.
    ct_spacing = tuple(float(s) for s in np.diag(ct_affine)[:3])
    hu = label_ct.sample_hu(r_ct)
    scanner = ct_physics.sample_scanner(r_ct)
    images = label_ct.field_images(fields, fat_mean, classes.shape, src_affine)
    hu_src = label_ct.paint_ct(classes, hu, images)
    hu_src = label_mr.smooth(hu_src, label_mr.blur_sigma(src_spacing, ct_spacing))
    coords = source_coords(warp, ct_affine, ct_size, src_affine)
    ct_hu = warp_image(hu_src, src_affine, warp, ct_affine, ct_size, cval=-1000.0, coords=coords)
    del hu_src
    labels_ct = _split_codes(warp_image(codes, src_affine, warp, ct_affine, ct_size, order=0,
                                        coords=coords), lut)[1]
    del coords
    ct = Volume(ct_physics.acquire(ct_hu, ct_spacing, scanner, r_ct), ct_affine, "CT")
    del ct_hu

    # MR: the same anatomy seen through the misaligned MR grid.
    mr_to_subject = mr_to_ct @ mr_affine
    coords = source_coords(warp, mr_to_subject, mr_size, src_affine)
    mr_labels, mr_classes = _split_codes(warp_image(codes, src_affine, warp, mr_to_subject,
                                                    mr_size, order=0, coords=coords), lut)
    present = np.unique(classes)
    wanted = ["random"] if config.mr_mode == "random" else list(config.contrasts)
    contrast_seeds = r_mr.integers(2**31, size=len(ALL_CONTRASTS))
    acq_res = np.maximum(resolution["resolution_mm"], mr_spacing)
    sigma = label_mr.blur_sigma(src_spacing, acq_res)
    mr, protocols = {}, {}
    for c in wanted:
        rng_c = np.random.default_rng(int(contrast_seeds[ALL_CONTRASTS.index(c)]))
        if c == "random":
            draw = label_mr.random_contrast(rng_c)
            values, spread = draw["mean"], draw["spread"]
            protocols[c] = {"mode": "random", "mean": values.tolist(), "spread": spread.tolist()}
        else:
            protocols[c] = label_mr.sample_protocol(c, rng_c)
            values, spread = label_mr.class_signals(protocols[c], rng_c), None
            protocols[c]["class_signal"] = values.tolist()
        src = label_mr.paint_mr(classes, values, images, rng_c, spread)
        src = label_mr.smooth(src, sigma)
        image = warp_image(src, src_affine, warp, mr_to_subject, mr_size, cval=0.0, coords=coords)
        del src
        reference = float(np.max(values[present]))
        image, protocols[c]["acquisition"] = mr_physics.acquire(image, mr_affine, reference, rng_c)
        mr[c] = Volume(image, mr_affine, "MR", {"contrast": c})
    del coords, images

    mask = ndimage.binary_dilation(mr_classes != 0).astype(np.float32)
    ct_on_mr = resample_ct_to_mr(ct, mr_affine, mr_size, mr_to_ct) if config.ct_on_mr else None
    sid = subject_id(config.region, index)
    truth = {
        "format": TRUTH_FORMAT, "medxlate_version": __version__, "id": sid,
        "region": config.region, "seed": int(seed), "index": int(index),
        "source": {"label_map": Path(path).name, "label_scheme": str(config.label_scheme),
                   "split": config.split, "mr_mode": config.mr_mode},
        **geometry_record(mr_to_ct, fov_center, mis, (mr_affine, mr_size),
                          (ct_affine, ct_size)),
        "anatomy": {"warp": warp.record, "soft_tissue_fat_fraction_mean": fat_mean,
                    "note": "map point = center + A (ct_world - center) + displacement"},
        "ct": {**scanner, "class_mean_hu": {c.name: float(v) for c, v in zip(CLASSES, hu)}},
        "mr": {"mode": config.mr_mode, "contrasts": wanted, "mr_file_contrast": wanted[0],
               **resolution, "protocols": protocols},
        "labels": {str(k): v for k, v in CLASS_NAMES.items()},
        "labels_source": "labels_source.nii.gz holds the map's own label values on the MR grid",
        "hu_ranges": {c.name: list(c.hu_mean) for c in CLASSES},
    }
    return Subject(
        id=sid, mr=mr, ct=ct,
        labels=Volume(mr_classes.astype(np.float32), mr_affine, "unknown"),
        labels_ct=Volume(labels_ct.astype(np.float32), ct_affine, "unknown"),
        mask=Volume(mask, mr_affine, "unknown"), truth=truth, ct_on_mr=ct_on_mr,
        extra={"labels_source": Volume(mr_labels, mr_affine, "unknown")})
