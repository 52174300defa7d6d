"""Dose columns of a bench (spec key ``dose``): `medxlate evaluate --dose` on every row.

For every row whose target is a CT (models, the intensity map and the spacing floors; not the
constant guess, which has no air for a beam to cross), each held-out subject's prediction is
scored with evaluate's dose code: a plan made on the reference CT, recomputed on the
prediction. Results are cached in ``W/dose/<direction>/<row>/<id>.json`` with the settings and
the prediction file they were made from, so a rerun (or a spec whose other keys change) does
not plan again. ``medxlate bench --no-dose`` skips the key.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from medxlate.errors import MedxlateError, UsageError

#: Report columns (mean over the held-out subjects that planned).
COLUMNS = ("gamma_2_2", "gamma_1_1", "dose_mae_body", "dose_mae_high", "target_d98_diff",
           "target_mean_diff", "range_shift_abs_max")
HEADERS = {"gamma_2_2": "γ 2%/2mm (%)", "gamma_1_1": "γ 1%/1mm (%)",
           "dose_mae_body": "dose MAE body (% Rx)", "dose_mae_high": "dose MAE >90% (% Rx)",
           "target_d98_diff": "ΔD98 (% Rx)", "target_mean_diff": "ΔDmean (% Rx)",
           "range_shift_abs_max": "max |Δrange| (mm)"}
#: Reference rows without dose figures.
NO_DOSE_REFERENCES = ("constant",)


def check_engine(spec) -> None:
    """Before any training: the dose extra must be there when the spec asks for dose."""
    if spec.dose is not None:
        from medxlate.evaluate.dose import require_engine

        try:
            require_engine()
        except UsageError as exc:
            raise UsageError(f"{spec.path.name}: dose: {exc}; or run with --no-dose") from None


def score_dose(pred: Path, subject, settings) -> dict[str, float]:
    """evaluate's dose figures of one prediction against the subject's CT (its label map,
    ``labels.nii.gz`` beside the CT, serves ``label:K`` targets)."""
    from medxlate.evaluate.pairs import Case
    from medxlate.evaluate.run import Settings, evaluate_case

    labels = Path(subject.ct).parent / "labels.nii.gz"
    record = evaluate_case(Case(subject.id, pred, subject.ct, subject.mask,
                                labels=labels if labels.is_file() else None),
                           Settings(modality="CT", device="cpu", dose=settings))
    return {k: float(v) for k, v in record["metrics"].items()
            if k.startswith(("dose_", "gamma_", "target_", "range_shift_"))}


def _slug(label: str) -> str:
    from medxlate.bench.spec import ModelEntry

    return ModelEntry(label=label, model="", direction="mr->ct").slug


def prediction(work: Path, row: dict[str, Any], subject_id: str) -> Path:
    """Where the runner wrote a row's prediction of a subject."""
    from medxlate.bench.spec import DIRECTIONS

    if row["kind"] == "model":
        return work / "models" / _slug(row["label"]) / "out" / f"{subject_id}.nii.gz"
    return (work / "references" / DIRECTIONS[row["direction"]][2] / row["label"]
            / f"{subject_id}.nii.gz")


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def add_dose(bench, rows: list[dict], refs: list[dict]) -> None:
    """Add ``row["dose"]`` (means, per-subject figures, failures) to every CT row."""
    from medxlate.bench.dose_spec import to_settings
    from medxlate.bench.records import clean, write_json
    from medxlate.bench.spec import DIRECTIONS

    record = bench.spec.dose
    settings = to_settings(record)
    plan = {k: v for k, v in record.items() if k != "references"}   # what a result depends on
    chosen = [*rows, *[r for r in refs if record["references"]
                       and r["label"] not in NO_DOSE_REFERENCES]]
    for row in chosen:
        if DIRECTIONS[row["direction"]][1] != "ct":
            continue
        cases, failed = [], []
        name = _slug(row["label"]) if row["kind"] == "model" else row["label"]
        folder = bench.work / "dose" / DIRECTIONS[row["direction"]][2] / f"{row['kind']}-{name}"
        for subject in bench.cohort.tests:
            pred = prediction(bench.work, row, subject.id)
            done = folder / f"{subject.id}.json"
            made_from = {"settings": plan, "prediction": str(pred),
                         "mtime_ns": pred.stat().st_mtime_ns if pred.is_file() else None}
            if done.is_file():
                cached = json.loads(done.read_text())
                if cached.get("made_from") == clean(made_from):
                    (cases if cached["ok"] else failed).append(cached["result"])
                    continue
            try:
                result, ok = {"id": subject.id, **score_dose(pred, subject, settings)}, True
                bench.echo(f"bench: {row['label']}: {subject.id} dose gamma 2%/2mm "
                           f"{result.get('gamma_2_2', math.nan):.2f} %")
            except MedxlateError as exc:
                result = {"id": subject.id, "error": str(exc), "exit_code": exc.exit_code}
                ok = False
                bench.echo(f"bench: {row['label']}: {subject.id} dose failed: {exc}")
            (cases if ok else failed).append(result)
            write_json(done, {"made_from": made_from, "ok": ok, "result": result})
        names = [k for k in COLUMNS if any(k in c for c in cases)]
        row["dose"] = {"metrics": {k: _mean([c.get(k) for c in cases]) for k in names},
                       "subjects": cases, "failed": failed}


def header_cells(result: dict[str, Any]) -> list[str]:
    """Markdown header cells of the dose columns (none when the bench has no dose)."""
    dose = result.get("dose")
    if not dose:
        return []
    return [HEADERS[k] for k in COLUMNS if k != "range_shift_abs_max"
            or dose["modality"] == "proton"]


def row_cells(result: dict[str, Any], row: dict[str, Any]) -> list[str]:
    dose = result.get("dose")
    if not dose:
        return []
    keys = [k for k in COLUMNS if k != "range_shift_abs_max" or dose["modality"] == "proton"]
    metrics = (row.get("dose") or {}).get("metrics") or {}
    return ["-" if metrics.get(k) is None else f"{metrics[k]:.2f}" for k in keys]


def csv_cells(row: dict[str, Any]) -> dict[str, str]:
    metrics = (row.get("dose") or {}).get("metrics") or {}
    return {k: "" if metrics.get(k) is None else f"{metrics[k]:.6g}" for k in COLUMNS}


def note(result: dict[str, Any]) -> str:
    """One paragraph under the tables: what the dose columns are."""
    d = result.get("dose")
    if not d:
        return ""
    return (f"Dose columns: `medxlate evaluate --dose {d['modality']}` on every held-out "
            f"subject (docs/dose.md): a plan on the reference CT ({d['prescription_gy']:g} Gy in "
            f"{d['fractions']} fx, target `{d['target']}`, gantry "
            f"{', '.join(f'{b:g}' for b in d['beams'])} deg, {d['dose_grid_mm']:g} mm dose "
            f"grid) recomputed on the prediction; dose differences in % of the prescription, "
            "means over the subjects that planned (failures in bench.json). The constant row "
            "has no air for a beam to cross and gets no dose figures.")
