"""Evaluate cases: read, check or resample geometry, find the mask, normalise MR, compute.

Example:
    >>> from medxlate.evaluate.pairs import Case
    >>> record = evaluate_case(Case("s1", Path("sct.nii.gz"), Path("ct.nii.gz")),
    ...                        Settings())                            # doctest: +SKIP
    >>> record["metrics"]["mae"]                                      # doctest: +SKIP
    61.2
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medxlate.errors import InputError, MedxlateError
from medxlate.evaluate.geometry import check_overlap, check_same_grid, resample_to
from medxlate.evaluate.metrics import MetricConfig, image_metrics
from medxlate.evaluate.order import order_label, stored_ornt, to_stored
from medxlate.evaluate.pairs import Case
from medxlate.io import Volume, read_volume

DEFAULT_HU_RANGE = (-1024.0, 3000.0)
DEFAULT_TISSUE_THRESHOLDS = (-400.0, 250.0)
DEFAULT_MR_PERCENTILES = (0.5, 99.5)


@dataclass
class Settings:
    """Options of an evaluation run.

    Attributes:
        modality: modality of the synthetic image: "CT" (MR->CT, HU metrics) or "MR"
            (CT->MR, metrics on normalised intensities).
        hu_range: CT clip range / data range (SynthRAD2023 [-1024, 3000]).
        tissue_thresholds: air/soft-tissue and soft-tissue/bone HU thresholds on the reference.
        mr_percentiles: percentiles of the reference MR inside the mask that map to [-1, 1]
            when no dataset normalisation applies.
        resample_to_ref: resample a prediction (and mask/labels) on another grid onto the
            reference grid instead of failing.
        device: torch device for SSIM/MS-SSIM (None: CUDA if present, else CPU).
        dose: a :class:`medxlate.evaluate.dose.settings.DoseSettings` for --dose, else None.
    """

    modality: str = "CT"
    hu_range: tuple[float, float] = DEFAULT_HU_RANGE
    tissue_thresholds: tuple[float, float] = DEFAULT_TISSUE_THRESHOLDS
    mr_percentiles: tuple[float, float] = DEFAULT_MR_PERCENTILES
    resample_to_ref: bool = False
    device: str | None = None
    #: plan on the reference, recompute on the synthetic CT (evaluate.dose; None: no dose).
    dose: object | None = None


@dataclass
class Loaded:
    """A case's images on the reference grid."""

    pred: Volume
    ref: Volume
    mask: np.ndarray
    mask_origin: str
    labels: np.ndarray | None
    source: Volume | None
    #: stored voxel order of the reference file (None: canonical), see evaluate.order.
    ref_ornt: np.ndarray | None = None
    warnings: list[str] | None = None


def _on_ref_grid(vol: Volume, ref: Volume, name: str, ref_name: str, settings: Settings,
                 order: int, fill: float) -> Volume:
    if settings.resample_to_ref:
        check_overlap(vol, ref, name, ref_name)
        return resample_to(vol, ref, order=order, fill=fill)
    check_same_grid(vol, ref, name, ref_name)
    return vol


def load_case(case: Case, settings: Settings) -> Loaded:
    """Read a case and bring prediction, mask and labels onto the reference grid.

    The source image (display only) is always resampled onto the reference grid.
    """
    fill = -1024.0 if settings.modality == "CT" else 0.0
    warnings: list[str] = []
    ref = read_volume(case.ref, modality=settings.modality)
    padding = None
    if settings.modality == "CT":
        from medxlate.preprocess.ct_padding import clean_ct

        # Scanner padding outside the reconstruction circle is not tissue: the reference is
        # clipped to -1024 HU and its padding leaves the mask (preprocess.ct_padding).
        ref, padding = clean_ct(ref)
    pred = read_volume(case.pred, modality=settings.modality)
    pred = _on_ref_grid(pred, ref, f"prediction {case.pred}", f"reference {case.ref}", settings,
                        1, fill)
    for name, vol in (("prediction", pred), ("reference", ref)):
        if not np.isfinite(vol.array).all():
            raise InputError(f"{name} of {case.id} has NaN or infinite voxels")
    if case.mask is not None:
        mvol = _on_ref_grid(read_volume(case.mask), ref, f"mask {case.mask}",
                            f"reference {case.ref}", settings, 0, 0.0)
        # SynthRAD binarises with mask > 0; say so when that is not a no-op.
        mask = mvol.array > 0
        origin = case.mask_origin
        warnings.extend(mask_warnings(mvol.array, case.id))
    else:
        from medxlate.preprocess.mask import body_mask

        mask = body_mask(ref, settings.modality)
        origin = "computed from the reference (preprocess body mask)"
    if padding is not None and (mask & padding).any():
        warnings.append(f"{int((mask & padding).sum())} mask voxel(s) of {case.id} are padding "
                        "in the reference CT (outside the reconstruction circle); not scored")
        mask = mask & ~padding
    if not mask.any():
        raise InputError(f"mask of {case.id} is empty")
    labels = None
    if case.labels is not None:
        lvol = _on_ref_grid(read_volume(case.labels), ref, f"labels {case.labels}",
                            f"reference {case.ref}", settings, 0, 0.0)
        labels = np.rint(lvol.array).astype(np.int32)
    source = None
    if case.source is not None:
        svol = read_volume(case.source)
        source = resample_to(svol, ref, order=1, fill=float(svol.array.min()))
    return Loaded(pred, ref, mask, origin, labels, source, stored_ornt(case.ref), warnings)


def mask_warnings(values: np.ndarray, case_id: str) -> list[str]:
    """A warning when a mask holds values other than 0 and 1 (all > 0 count as inside)."""
    other = (values != 0) & (values != 1)
    n = int(np.count_nonzero(other))
    if not n:
        return []
    odd = np.unique(values[other])
    shown = ", ".join(f"{v:g}" for v in odd[:5]) + (" ..." if odd.size > 5 else "")
    return [(f"mask of {case_id} is not binary: {n} voxel(s) hold values other than 0 and 1 "
             f"({shown}); every voxel > 0 counts as inside, as in the SynthRAD evaluation "
             "code")]


def mr_normalisation(case: Case, ref: np.ndarray, mask: np.ndarray,
                     settings: Settings) -> tuple[dict, dict]:
    """(spec, per-subject params): the dataset's when the case has them, else percentiles."""
    from medxlate.intensity import mr_params

    spec = (case.extra.get("normalisation") or {}).get("mr")
    if spec is None:
        low_pct, high_pct = settings.mr_percentiles
        spec = {"kind": "percentile", "low_pct": low_pct, "high_pct": high_pct}
    params = case.mr_norm if case.mr_norm else mr_params(ref, spec, mask)
    return spec, params


def metric_config(settings: Settings, low: float, high: float) -> MetricConfig:
    thresholds = settings.tissue_thresholds if settings.modality == "CT" else None
    return MetricConfig(low, high, thresholds, settings.device)


def evaluate_loaded(case: Case, data: Loaded, settings: Settings) -> dict:
    """The report record of one loaded case."""
    pred, ref = data.pred.array, data.ref.array
    record: dict = {"id": case.id, "pred": str(case.pred), "ref": str(case.ref),
                    "mask": str(case.mask) if case.mask else None,
                    "mask_origin": data.mask_origin,
                    "labels": str(case.labels) if case.labels else None,
                    "source": str(case.source) if case.source else None,
                    "n_mask_voxels": int(data.mask.sum()),
                    "shape": list(data.ref.shape),
                    "spacing_mm": [round(s, 6) for s in data.ref.spacing]}
    if settings.modality == "MR":
        from medxlate.intensity import normalise_mr

        spec, params = mr_normalisation(case, ref, data.mask, settings)
        pred = normalise_mr(pred, spec, params, data.mask)
        ref = normalise_mr(ref, spec, params, data.mask)
        if spec["kind"] == "percentile":
            low, high = -1.0, 1.0
        else:  # z-score is unbounded: the reference's range inside the mask
            low, high = float(ref[data.mask].min()), float(ref[data.mask].max())
        record["normalisation"] = {"spec": spec, "params": params}
    else:
        low, high = settings.hu_range
    record["range"] = [low, high]
    # The arrays in the reference file's stored voxel order, as SynthRAD scores them.
    record["array_order"] = order_label(data.ref_ornt)
    if data.warnings:
        record["warnings"] = list(data.warnings)

    def stored(a):
        return None if a is None else to_stored(a, data.ref_ornt)

    metrics, details = image_metrics(stored(pred), stored(ref), stored(data.mask),
                                     metric_config(settings, low, high), stored(data.labels))
    record["metrics"] = metrics
    record.update(details)
    undefined = [k for k, v in metrics.items() if np.isnan(v)]
    if undefined:  # NaN: no voxel of that class, or the mask vanished at a coarse MS-SSIM scale
        record["undefined_metrics"] = undefined
    return record


def evaluate_case(case: Case, settings: Settings, plots_dir: Path | None = None,
                  overwrite: bool = False) -> dict:
    """Load, evaluate and (optionally) plot one case."""
    data = load_case(case, settings)
    record = evaluate_loaded(case, data, settings)
    if settings.dose is not None:
        from medxlate.evaluate.dose.run import evaluate_dose

        metrics, details = evaluate_dose(case.id, data, settings.dose, settings.resample_to_ref,
                                         plots_dir, overwrite)
        record["metrics"].update(metrics)
        if details.get("warnings"):
            record["warnings"] = record.get("warnings", []) + details.pop("warnings")
        if details.get("notes"):
            record["notes"] = record.get("notes", []) + details.pop("notes")
        record["dose"] = details
    if plots_dir is not None:
        from medxlate.evaluate.plots import montage

        path = Path(plots_dir) / f"{case.id}.png"
        montage(case.id, data, settings.modality, path, overwrite=overwrite)
        record["plot"] = str(path)
    return record


def _one(case: Case, settings: Settings, plots_dir, overwrite: bool, single: bool):
    try:
        return evaluate_case(case, settings, plots_dir, overwrite), None
    except MedxlateError as exc:
        if single:
            raise
        return None, {"id": case.id, "error": str(exc), "exit_code": exc.exit_code}


def evaluate_cases(cases: list[Case], settings: Settings, plots_dir: Path | None = None,
                   overwrite: bool = False, progress=None,
                   workers: int = 1) -> tuple[list[dict], list[dict]]:
    """Evaluate every case; one that fails is recorded and the others go on.

    ``workers`` > 1 evaluates subjects in that many spawned processes (one thread each is up
    to the caller's OMP_NUM_THREADS); records keep the cases' order.

    Returns:
        (records, failures) where a failure is ``{"id", "error"}``.
    """
    single = len(cases) == 1
    results: dict[str, tuple] = {}
    if workers > 1 and not single:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(cases)), mp_context=context) as pool:
            futures = {pool.submit(_one, c, settings, plots_dir, overwrite, False): c
                       for c in cases}
            for future in as_completed(futures):
                results[futures[future].id] = future.result()
                if progress is not None:
                    progress(futures[future].id)
    else:
        for case in cases:
            results[case.id] = _one(case, settings, plots_dir, overwrite, single)
            if progress is not None:
                progress(case.id)
    records = [results[c.id][0] for c in cases if results[c.id][0] is not None]
    failures = [results[c.id][1] for c in cases if results[c.id][1] is not None]
    return records, failures
