"""One subject through the steps, in their fixed order, into a work folder.

:func:`process_subject` reads the inputs and writes ``subject/{mr,ct,mask}.nii.gz``,
``subject/ct_to_mr.tfm``, ``subject/subject.json`` and ``shard.safetensors`` under ``work``;
the runner then moves them into the dataset (see :mod:`medxlate.preprocess.run`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medxlate.errors import InputError
from medxlate.io.nifti import write_nifti
from medxlate.io.volume import Volume
from medxlate.preprocess.config import STEP_ORDER
from medxlate.preprocess.contours import contour_maps
from medxlate.preprocess.crop import crop, crop_box, crop_record
from medxlate.preprocess.ct_padding import clean_ct
from medxlate.preprocess.dataset import FORMAT, write_shard
from medxlate.preprocess.inputs import SubjectInput
from medxlate.preprocess.mask import body_mask
from medxlate.intensity import mr_params, normalise_ct, normalise_mr
from medxlate.preprocess.read import read_input
from medxlate.preprocess.resample import field_of_view, resample, target_grid
from medxlate.preprocess.slices import body_fraction, to_slices

CT_BACKGROUND = -1024.0


def enabled(cfg: dict, step: str) -> bool:
    return bool(cfg["steps"][step].get("enabled", True))


class _Clock:
    """Per-step wall times, and the caller's progress callback."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say, self.times, self._step, self._t = say, {}, None, time.perf_counter()

    def step(self, name: str | None) -> None:
        now = time.perf_counter()
        if self._step is not None:
            self.times[self._step] = round(self.times.get(self._step, 0.0) + now - self._t, 3)
        self._step, self._t = name, now
        if name is not None:
            self.say(name)


def _read(s: SubjectInput, cfg: dict) -> tuple[dict[str, Volume], Volume | None, dict]:
    vols, inputs = {}, {}
    for kind in s.modalities:
        path = getattr(s, kind)
        vol = read_input(path, kind.upper(), f"{s.id} {kind.upper()} ({path.name})",
                         cfg["steps"]["read"])
        vols[kind] = vol
        inputs[kind] = {"path": str(path), "sha256": s.extra.get("sha256", {}).get(kind),
                        "shape": list(vol.shape), "spacing_mm": [round(x, 5) for x in vol.spacing],
                        "orientation": vol.orientation}
    provided = None
    if s.mask is not None:
        provided = read_input(s.mask, "unknown", f"{s.id} mask ({s.mask.name})",
                              cfg["steps"]["read"])
        if not (provided.array > 0.5).any():
            raise InputError(f"{s.id} mask ({s.mask}): the mask is empty (zero voxels)")
        inputs["mask"] = {"path": str(s.mask), "sha256": s.extra.get("sha256", {}).get("mask")}
    return vols, provided, inputs


def _register(vols, cfg, record, s: SubjectInput, work: Path, clock: _Clock):
    from medxlate.preprocess.register import register_ct_to_mr

    params = cfg["steps"]["register"]
    mask_cfg = cfg["steps"]["mask"]
    mr_mask = body_mask(vols["mr"], "MR", **mask_cfg["mr"])
    ct_mask = body_mask(vols["ct"], "CT", **mask_cfg["ct"]) if params["init"] == "mask" else None
    transform, report = register_ct_to_mr(vols["mr"], vols["ct"], params, mr_mask, ct_mask,
                                          seed=int(params.get("seed", 0)),
                                          log=lambda m: clock.say(f"register: {m}"))
    sitk.WriteTransform(transform, str(work / "subject" / "ct_to_mr.tfm"))
    record["registration"] = report
    return transform


def _masks(vols_t, fovs, provided_t, cfg, paired: bool) -> tuple[np.ndarray, dict]:
    """The final body mask on the target grid, and facts about it for the record."""
    params = cfg["steps"]["mask"]
    facts: dict = {}
    fov = np.logical_and.reduce(list(fovs.values()))
    if enabled(cfg, "mask"):
        bodies = {}
        if "mr" in vols_t:
            bodies["mr"] = body_mask(vols_t["mr"], "MR", **params["mr"]) & fovs["mr"]
        if "ct" in vols_t and (not paired or params["source"] != "mr"):
            bodies["ct"] = body_mask(vols_t["ct"], "CT", **params["ct"]) & fovs["ct"]
        if paired:
            coverage = float((bodies["mr"] & fovs["ct"]).sum()) / max(1, int(bodies["mr"].sum()))
            facts["ct_coverage_of_mr_body"] = round(coverage, 4)
            if coverage < float(params["min_ct_coverage"]):
                raise InputError(
                    f"the CT covers {coverage:.0%} of the MR body after "
                    f"{'registration' if enabled(cfg, 'register') else 'reading (no registration)'}"
                    f" (minimum {float(params['min_ct_coverage']):.0%}): MR and CT do not overlap")
        source = params["source"] if paired else next(iter(bodies))
        if source in ("mr", "ct"):
            mask = bodies[source]
        elif source == "union":
            mask = bodies["mr"] | bodies["ct"]
        else:
            mask = bodies["mr"] & bodies["ct"]
        mask &= fov
    else:
        mask = fov.copy()
    if provided_t is not None:
        mask &= provided_t
    if not mask.any():
        raise InputError("the body mask is empty after combining it with the field(s) of view"
                         + (" and the provided mask" if provided_t is not None else ""))
    facts["body_voxels"] = int(mask.sum())
    return mask, facts


def _slices_and_contours(arrays: dict, mask: np.ndarray, spec: dict, norm: dict, cfg: dict,
                         clock: _Clock) -> tuple[dict, list[int]]:
    params = cfg["steps"]["slices"]
    axis, size = int(params["axis"]), params["size"]
    tensors: dict[str, np.ndarray] = {}
    mask_s, offset = to_slices(mask.astype(np.uint8), axis, size, 0)
    tensors["mask"] = mask_s
    if "mr" in arrays:
        background = float(normalise_mr(np.zeros(1), spec, norm, np.zeros(1, bool))[0])
        tensors["mr"] = to_slices(arrays["mr"], axis, size, background, offset)[0]
    if "ct" in arrays:
        tensors["ct"] = to_slices(arrays["ct"], axis, size, -1.0, offset)[0]
    tensors["keep"] = (body_fraction(mask_s) >= float(params["min_body_fraction"])).astype(
        np.uint8)
    tensors["index"] = np.arange(len(mask_s), dtype=np.int32)
    if enabled(cfg, "contours"):
        clock.step("contours")
        for kind in ("mr", "ct"):
            if kind in tensors:
                tensors[f"{kind}_edges"] = contour_maps(tensors[kind], cfg["steps"]["contours"])
    return tensors, offset


def _read_contrasts(s: SubjectInput, cfg: dict, record: dict) -> tuple[dict, list[str]]:
    """Extra MR contrasts by tag, and the tags that are the reference MR's own file."""
    from medxlate.preprocess.contrasts import same_file

    cvols, aliases = {}, []
    for tag, path in sorted(s.extra.get("contrasts", {}).items()):
        if s.mr is not None and same_file(path, s.mr):
            aliases.append(tag)
            continue
        cvols[tag] = read_input(path, "MR", f"{s.id} MR {tag} ({path.name})", cfg["steps"]["read"])
        record["inputs"][f"mr_{tag}"] = {"path": str(path),
                                         "sha256": s.extra.get("sha256", {}).get(f"mr_{tag}")}
    if cvols and "mr" not in s.modalities:
        raise InputError(f"{s.id}: extra MR contrasts need the reference MR (mr)")
    return cvols, aliases


def _register_contrasts(vols, cvols, cfg, record, work: Path, clock: _Clock) -> dict:
    """Rigid transform of every extra contrast onto the reference MR (None: not registered)."""
    from medxlate.preprocess.contrasts import register_contrast

    if not enabled(cfg, "register"):
        return {}
    params = cfg["steps"]["register"]
    ref_mask = body_mask(vols["mr"], "MR", **cfg["steps"]["mask"]["mr"])
    out, reports = {}, {}
    for tag, vol in cvols.items():
        tx, reports[tag] = register_contrast(vols["mr"], vol, params, ref_mask,
                                             int(params.get("seed", 0)),
                                             lambda m, t=tag: clock.say(f"register {t}: {m}"))
        sitk.WriteTransform(tx, str(work / "subject" / f"mr_{tag}_to_mr.tfm"))
        out[tag] = tx
    record["contrast_registration"] = reports
    return out


def _write_volumes(arrays: dict, mask: np.ndarray, spec: dict, record: dict, cfg: dict,
                   work: Path) -> None:
    """The fixed-size 3D training volumes around the body, and the box they came from."""
    from medxlate.preprocess.volumes import box_start, cut

    size = [int(n) for n in cfg["steps"]["volumes"]["size"]]
    start = box_start(mask, size)
    params = {"mr": record.get("mr_norm", {}), **record.get("contrast_norm", {})}

    def background(k: str) -> float:     # the normalised value of "no signal" (0)
        if k == "ct":
            return -1.0
        return float(normalise_mr(np.zeros(1), spec, params[k], np.zeros(1, bool))[0])

    tensors = {k: cut(v, start, size, background(k)) for k, v in arrays.items()}
    tensors["mask"] = cut(mask.astype(np.uint8), start, size, 0)
    # The box on the subject's (cropped) grid: voxel start (negative = padding) and size.
    record["volume"] = {"start": start, "size": size}
    write_shard(work / "volume.safetensors", tensors,
                {"format": FORMAT, "subject": record["id"], "start": start, "size": size})


def _ran(name: str, cfg: dict, paired: bool, vols: dict) -> bool:
    if name in ("read", "normalise"):
        return True
    if name == "register":
        return paired and enabled(cfg, name)
    if name == "bias_correction":
        return "mr" in vols and enabled(cfg, name)
    if name == "contours":
        return enabled(cfg, "slices") and enabled(cfg, name)
    return enabled(cfg, name)


def process_subject(s: SubjectInput, cfg: dict, paired: bool, work: Path,
                    say: Callable[[str], None] = lambda _m: None) -> dict:
    """Run every enabled step for subject ``s``; returns its dataset.json record."""
    from medxlate.preprocess.tre import body_points, read_truth_matrix, tre_mm

    if s.problem:
        raise InputError(f"{s.id}: {s.problem}")
    clock = _Clock(say)
    (work / "subject").mkdir(parents=True, exist_ok=True)
    record: dict = {"id": s.id, "modalities": s.modalities,
                    "config_hash": s.extra.get("config_hash")}
    clock.step("read")
    vols, provided, record["inputs"] = _read(s, cfg)
    cvols, aliases = _read_contrasts(s, cfg, record)
    ct_padding = None
    if "ct" in vols:
        # Scanner padding (outside the reconstruction circle) is outside the CT's field of
        # view, and the CT is clipped to the window floor (medxlate.preprocess.ct_padding).
        vols["ct"], ct_padding = clean_ct(vols["ct"], float(cfg["normalisation"]["ct"]["low"]))
        record["inputs"]["ct"]["padding_voxels"] = int(ct_padding.sum())
    ref = vols["mr"] if "mr" in vols else vols["ct"]
    if "mr" in vols and enabled(cfg, "bias_correction"):
        from medxlate.preprocess.bias import n4_correct

        clock.step("bias_correction")
        mr_mask = body_mask(vols["mr"], "MR", **cfg["steps"]["mask"]["mr"])
        vols["mr"], record["bias_correction"] = n4_correct(vols["mr"], mr_mask,
                                                           cfg["steps"]["bias_correction"])
    transform = None
    if paired and enabled(cfg, "register"):
        clock.step("register")
        transform = _register(vols, cfg, record, s, work, clock)
    ctx = {}
    if cvols:
        clock.step("register")
        ctx = _register_contrasts(vols, cvols, cfg, record, work, clock)
    clock.step("resample")
    spacing = cfg["steps"]["resample"]["spacing_mm"] if enabled(cfg, "resample") else None
    affine, shape = target_grid(ref, spacing)
    vols_t, fovs = {}, {}
    for kind, vol in vols.items():
        tx = transform if kind == "ct" and ref is not vol else None
        default = CT_BACKGROUND if kind == "ct" else 0.0
        vols_t[kind] = resample(vol, affine, shape, tx, "linear", default)
        fovs[kind] = field_of_view(vol, affine, shape, tx,
                                   invalid=ct_padding if kind == "ct" else None)
    cvols_t = {tag: resample(v, affine, shape, ctx.get(tag), "linear", 0.0)
               for tag, v in cvols.items()}
    provided_t = None
    if provided is not None:
        provided_t = resample(provided, affine, shape, None, "nearest", 0.0).array > 0.5
    clock.step("mask")
    mask, record["mask"] = _masks(vols_t, fovs, provided_t, cfg, paired)
    if enabled(cfg, "mask"):
        for kind, vol in vols_t.items():
            vol.array[~mask] = CT_BACKGROUND if kind == "ct" else 0.0
        for vol in cvols_t.values():
            vol.array[~mask] = 0.0
    mask_vol = Volume(mask.astype(np.float32), affine, "unknown")
    if transform is not None and s.truth is not None:
        record["registration"]["tre_mm"] = tre_mm(transform, read_truth_matrix(s.truth),
                                                  body_points(mask, affine))
        record["registration"]["truth"] = str(s.truth)
    if "registration" in record:
        from medxlate.preprocess.qc import registration_warnings

        record["registration"]["warnings"] = registration_warnings(
            record["registration"], float(cfg["qc"]["max_tre_mm"]))
    if enabled(cfg, "crop"):
        clock.step("crop")
        start, stop = crop_box(mask, mask_vol.spacing, float(cfg["steps"]["crop"]["margin_mm"]))
        record["crop"] = crop_record(mask_vol, start, stop)
        vols_t = {k: crop(v, start, stop) for k, v in vols_t.items()}
        cvols_t = {k: crop(v, start, stop) for k, v in cvols_t.items()}
        mask_vol = crop(mask_vol, start, stop)
        mask = mask_vol.array > 0.5
    clock.step("write")
    for kind, vol in vols_t.items():
        write_nifti(vol, work / "subject" / f"{kind}.nii.gz")
    for tag, vol in cvols_t.items():
        write_nifti(vol, work / "subject" / f"mr_{tag}.nii.gz")
    write_nifti(mask_vol, work / "subject" / "mask.nii.gz", dtype=np.uint8)
    record.update({"shape": list(mask_vol.shape),
                   "spacing_mm": [round(x, 6) for x in mask_vol.spacing],
                   "affine": mask_vol.affine.round(6).tolist()})
    clock.step("normalise")
    spec = cfg["normalisation"]
    arrays = {}
    if "ct" in vols_t:
        arrays["ct"] = normalise_ct(vols_t["ct"].array, spec)
    if "mr" in vols_t:
        record["mr_norm"] = mr_params(vols_t["mr"].array, spec, mask)
        arrays["mr"] = normalise_mr(vols_t["mr"].array, spec, record["mr_norm"], mask)
    if cvols_t or aliases:
        record["contrasts"] = sorted([*cvols_t, *aliases])
        record["contrast_norm"] = {}
    for tag, vol in cvols_t.items():
        record["contrast_norm"][tag] = mr_params(vol.array, spec, mask)
        arrays[tag] = normalise_mr(vol.array, spec, record["contrast_norm"][tag], mask)
    for tag in aliases:                  # the reference MR itself, under its contrast tag
        record["contrast_norm"][tag] = record["mr_norm"]
        arrays[tag] = arrays["mr"]
    if enabled(cfg, "slices"):
        clock.step("slices")
        tensors, offset = _slices_and_contours(arrays, mask, spec, record.get("mr_norm", {}),
                                               cfg, clock)
        axis = int(cfg["steps"]["slices"]["axis"])
        write_shard(work / "shard.safetensors", tensors,
                    {"format": FORMAT, "subject": s.id, "slice_axis": axis, "offset": offset})
        record.update({"n_slices": len(tensors["index"]), "n_keep": int(tensors["keep"].sum()),
                       "offset": offset})
    if enabled(cfg, "volumes"):
        clock.step("volumes")
        _write_volumes(arrays, mask, spec, record, cfg, work)
    clock.step(None)
    record["steps_run"] = [name for name in STEP_ORDER if _ran(name, cfg, paired, vols)]
    record["time_s"] = clock.times
    (work / "subject" / "subject.json").write_text(json.dumps(record, indent=1))
    return record
