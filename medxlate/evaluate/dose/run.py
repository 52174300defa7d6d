"""One subject's dose evaluation, from the loaded case (reference grid) to report figures.

Example:
    >>> metrics, details = evaluate_dose("s1", loaded, DoseSettings(target=...))  # doctest: +SKIP
    >>> metrics["gamma_2_2"]                                                      # doctest: +SKIP
    99.7
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from medxlate.errors import InputError
from medxlate.evaluate.dose.settings import DoseSettings

#: A CT in HU has air: its lowest value lies below this (a normalised or raw-stored image not).
AIR_BELOW_HU = -500.0


def check_hu(array: np.ndarray, name: str, case_id: str) -> None:
    """InputError when an image cannot be a CT in HU (no voxel below -500 HU)."""
    low = float(array.min())
    if low > AIR_BELOW_HU:
        raise InputError(f"{name} of {case_id} does not look like a CT in HU (lowest value "
                         f"{low:.4g}, no air below {AIR_BELOW_HU:g} HU): dose needs HU; "
                         "convert normalised or raw stored values first")


def _on_grid(loaded, target: np.ndarray, grid):
    from medxlate.evaluate.geometry import resample_to
    from medxlate.io import Volume

    ref = resample_to(loaded.ref, grid, order=1, fill=-1024.0).array
    pred = resample_to(loaded.pred, grid, order=1, fill=-1024.0).array
    masks = [resample_to(Volume(m.astype(np.float32), loaded.ref.affine), grid, order=0,
                         fill=0.0).array > 0.5 for m in (loaded.mask, target)]
    return ref, pred, masks[0], masks[1]


def evaluate_dose(case_id: str, loaded, s: DoseSettings, resample: bool = False,
                  plots_dir: Path | None = None, overwrite: bool = False
                  ) -> tuple[dict[str, float], dict]:
    """(metrics, details) of one subject: plan on the reference, recompute on the synthetic."""
    from medxlate.evaluate.dose.calibration import default_table, read_table
    from medxlate.evaluate.dose.engine import make_plan, recompute
    from medxlate.evaluate.dose.grid import engine_grid
    from medxlate.evaluate.dose.metrics import dose_metrics
    from medxlate.evaluate.dose.target import check_inside, target_mask

    start = time.perf_counter()
    check_hu(loaded.ref.array, "reference", case_id)
    check_hu(loaded.pred.array, "prediction", case_id)
    notes: list[str] = []
    target = target_mask(s.target, loaded.ref, case_id, loaded.labels, resample, notes)
    check_inside(target, loaded.mask, case_id)
    table = read_table(s.calibration) if s.calibration else default_table()
    grid = engine_grid(loaded.ref, s.ct_grid_mm)
    ref, pred, body, tgt = _on_grid(loaded, target, grid)
    if not tgt.any():
        raise InputError(f"target of {case_id} vanishes on the {s.ct_grid_mm:g} mm dose CT "
                         "grid; use a larger target or a finer --dose-ct-grid")
    prep = time.perf_counter() - start
    plan = make_plan(ref, body, tgt, grid, s, table)
    dose_pred, beams_pred, recompute_s = recompute(plan, pred)
    t = time.perf_counter()
    metrics, details = dose_metrics(dose_pred, plan.dose, beams_pred, plan.beam_doses, body,
                                    tgt, s.prescription_gy, grid, s.mode, plan.iso_center_lps,
                                    plan.beam_dirs_lps)
    seconds = {"inputs": prep, **plan.seconds, "dose_influence_synthetic": recompute_s,
               "metrics_gamma": time.perf_counter() - t}
    details.update({"mode": s.mode, "prescription_gy": s.prescription_gy,
                    "fractions": s.fractions, "beams_deg": list(s.beams),
                    "dose_grid_mm": s.dose_grid_mm, "ct_grid_mm": list(grid.spacing),
                    "calibration": str(s.calibration) if s.calibration else "matRad default",
                    "target_voxels": int(tgt.sum()), "seconds": seconds})
    if notes:
        details["warnings"] = notes
    if s.out_dir is not None:
        details["files"] = _write_doses(case_id, grid, plan.dose, dose_pred, s.out_dir,
                                        overwrite, loaded.ref)
        note = no_rtdose_note(case_id, loaded.ref)
        if note is not None:
            details["notes"] = [note]
    if plots_dir is not None:
        from medxlate.evaluate.dose.plots import dose_figure

        path = Path(plots_dir) / f"{case_id}_dose.png"
        dose_figure(case_id, ref, plan.dose, dose_pred, tgt, body, s.prescription_gy, path,
                    overwrite, grid.spacing)
        details["plot"] = str(path)
    details["seconds"]["total"] = time.perf_counter() - start
    return metrics, details


def writes_rtdose(reference) -> bool:
    """True when --dose-out also writes a subject's doses as RTDOSE: its reference CT came
    from DICOM and names its frame of reference. ``reference`` is the CT as read (a Volume),
    or its path before the run (then the headers alone are read): the CLI's overwrite check
    and :func:`_write_doses` ask the same question."""
    from medxlate.io.rtdose import has_frame_of_reference

    if isinstance(reference, str | Path):
        from medxlate.errors import MedxlateError
        from medxlate.io.dicom_read import read_dicom_tags
        from medxlate.io.readers import format_of

        if format_of(Path(reference)) != "dicom":
            return False
        try:
            tags = read_dicom_tags(reference)
        except MedxlateError:  # that subject fails when it is read: it writes no dose
            return False
    else:
        tags = reference.meta.get("dicom")
    return has_frame_of_reference(tags)


def no_rtdose_note(case_id: str, reference) -> str | None:
    """One line when a reference CT read from DICOM gets no RTDOSE (None otherwise)."""
    if reference.meta.get("dicom") is None or writes_rtdose(reference):
        return None
    return (f"{case_id}: no RTDOSE written: the reference CT's DICOM headers have no "
            "FrameOfReferenceUID to place a dose in (the NIfTI doses are written)")


def dose_paths(case_id: str, out_dir: Path, dicom: bool = False) -> dict[str, Path]:
    """The --dose-out files of a subject; ``dicom``: also the RTDOSE files."""
    paths = {k: Path(out_dir) / f"{case_id}_{k}.nii.gz" for k in ("dose_ref", "dose_sct",
                                                                  "dose_diff")}
    if dicom:
        paths.update({f"{k}_rtdose": Path(out_dir) / f"{case_id}_{k}.dcm"
                      for k in ("dose_ref", "dose_sct")})
    return paths


def _write_doses(case_id, grid, ref, pred, out_dir: Path, overwrite: bool,
                 reference) -> dict[str, str]:
    """NIfTI doses (and RTDOSE ones, both naming one plan UID, when the reference CT came
    from DICOM), all on the dose CT grid."""
    from pydicom.uid import generate_uid

    from medxlate.io import Volume
    from medxlate.io.nifti import write_nifti
    from medxlate.io.rtdose import write_rtdose

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    dicom = writes_rtdose(reference)
    paths = dose_paths(case_id, out_dir, dicom)
    files = {}
    for key, array in zip(("dose_ref", "dose_sct", "dose_diff"), (ref, pred, pred - ref)):
        write_nifti(Volume(array.astype(np.float32), grid.affine), paths[key],
                    overwrite=overwrite)
        files[key] = str(paths[key])
    if dicom:
        plan_uid = generate_uid()
        for key, array, what in (("dose_ref", ref, "reference CT"),
                                 ("dose_sct", pred, "synthetic CT")):
            path = paths[f"{key}_rtdose"]
            write_rtdose(Volume(array.astype(np.float32), grid.affine), path, reference,
                         plan_uid, f"medxlate {case_id}: plan dose on the {what}", overwrite)
            files[f"{key}_rtdose"] = str(path)
    return files
