"""`medxlate evaluate`: SynthRAD-exact metrics of synthetic images, reports, plots, CI gates."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated as Opt

import typer

from medxlate.cli._errors import add_command

#: Columns of the screen table and their headers (the files hold every metric).
SCREEN_METRICS = {"mae": "MAE", "me": "ME", "psnr": "PSNR", "ssim": "SSIM", "ms_ssim": "MS-SSIM",
                  "nmse": "NMSE", "mae_air": "MAE air", "mae_soft_tissue": "MAE soft",
                  "mae_bone": "MAE bone"}


def _validate(modality: str, hu_range, tissue, percentiles, device: str) -> str:
    from medxlate.errors import UsageError
    from medxlate.models.registry import MODALITIES, image_modality

    # A target's modality tag (t2, flair, ct...) names its intensity convention.
    if modality.lower() in MODALITIES:
        modality = image_modality(modality.lower())
    modality = modality.upper()
    if modality not in ("CT", "MR"):
        raise UsageError(f"--modality must be CT (synthetic CT), MR (synthetic MR) or a "
                         f"target tag ({', '.join(MODALITIES)}), got {modality!r}")
    if hu_range is not None:
        if modality == "MR":
            raise UsageError("--hu-range applies to synthetic CT; synthetic MR uses the "
                             "normalised range")
        if not hu_range[0] < hu_range[1]:
            raise UsageError(f"--hu-range needs LOW < HIGH, got {hu_range[0]} {hu_range[1]}")
    if tissue is not None and not tissue[0] < tissue[1]:
        raise UsageError(f"--tissue-thresholds need AIR_SOFT < SOFT_BONE, got {tissue}")
    if percentiles is not None and not 0 <= percentiles[0] < percentiles[1] <= 100:
        raise UsageError(f"--mr-percentiles need 0 <= LOW < HIGH <= 100, got {percentiles}")
    if device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device must be auto, cpu or cuda, got {device!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available")
    return modality


def _known_metrics(modality: str) -> list[str]:
    names = ["mae", "me", "psnr", "ssim", "ms_ssim", "nmse"]
    return names + (["mae_air", "mae_soft_tissue", "mae_bone"] if modality == "CT" else [])


def _check_gate_metrics(gates, modality: str, dose_cfg=None) -> None:
    import re

    from medxlate.cli.evaluate_dose import known_metrics
    from medxlate.evaluate.gates import check_metrics

    known = _known_metrics(modality) + known_metrics(dose_cfg)
    label_gates = [g for g in gates if re.fullmatch(r"mae_label_\d+", g.metric)]
    check_metrics([g for g in gates if g not in label_gates], known + ["mae_label_<k>"])


def _table(records: list[dict], summary: dict, modality: str):
    from rich.table import Table

    from medxlate.evaluate.report import _fmt, metric_names

    from medxlate.cli.evaluate_dose import SCREEN

    screen = {**SCREEN_METRICS, **SCREEN}
    names = [n for n in metric_names(records) if n in screen]
    unit = "HU" if modality == "CT" else "normalised"
    table = Table(title=f"medxlate evaluate ({len(records)} subject(s), MAE/ME in {unit})")
    table.add_column("id", style="bold", no_wrap=True)
    for n in names:
        table.add_column(screen[n], justify="right", no_wrap=True)
    for r in records:
        table.add_row(r["id"], *[_fmt(r["metrics"].get(n), n) for n in names])
    if len(records) > 1:
        table.add_section()
        for stat in ("mean", "std", "median", "min", "max"):
            table.add_row(stat, *[_fmt(summary[n].get(stat), n) for n in names],
                          style="italic")
    return table


def _refuse_input_outputs(cases, others: list, files: dict, plots: Path | None) -> None:
    """Exit 2 when a report or plot would be written over an input (or another output)."""
    from medxlate.io.guard import Output, refuse_overlaps

    images = [p for c in cases for p in (c.pred, c.ref, c.mask, c.labels, c.source)]
    outputs = [Output(label, path) for label, path in files.items()]
    if plots is not None:
        outputs += [Output("--plots", plots / f"{c.id}.png") for c in cases]
    refuse_overlaps(images=images, others=others, outputs=outputs)


def evaluate(
    pred: Opt[Path | None, typer.Option(
        "--pred", help="Synthetic image, or a folder of them (<id>.nii.gz or <id>/sct.nii.gz)."
    )] = None,
    ref: Opt[Path | None, typer.Option(
        "--ref", help="Reference image, a folder matched by id (<id>.nii.gz or SynthRAD "
                      "<id>/ct.nii.gz), or a preprocess dataset folder.")] = None,
    mask: Opt[Path | None, typer.Option(
        "--mask", help="Body mask (a folder in cohort mode). Default: the dataset's or SynthRAD "
                       "folder's mask, else computed from the reference.")] = None,
    labels: Opt[Path | None, typer.Option(
        "--labels", help="Label map for per-label MAE (a folder in cohort mode).")] = None,
    source: Opt[Path | None, typer.Option(
        "--source", help="Source image shown in --plots (the MR for synthetic CT; a folder in "
                         "cohort mode).")] = None,
    pairs: Opt[Path | None, typer.Option(
        "--pairs", help="CSV with columns id,pred,ref[,mask,labels,source].")] = None,
    modality: Opt[str, typer.Option(
        "--modality", help="Modality of the synthetic image: CT or MR, or the target's tag "
                           "(ct, t1, t1ce, t2, flair, pd, mr).")] = "CT",
    hu_range: Opt[tuple[float, float] | None, typer.Option(
        "--hu-range", help="CT clip/data range LOW HIGH for PSNR, SSIM and MS-SSIM (default "
                           "-1024 3000 as SynthRAD2023's metrics; SynthRAD2025's evaluation "
                           "container, github.com/SynthRAD2025/evaluation image_metrics.py, "
                           "uses -1024 3071). The report's definitions name the range used."
    )] = None,
    tissue_thresholds: Opt[tuple[float, float] | None, typer.Option(
        "--tissue-thresholds", help="Reference-CT HU thresholds AIR_SOFT SOFT_BONE for "
                                    "per-tissue MAE (default -400 250).")] = None,
    mr_percentiles: Opt[tuple[float, float] | None, typer.Option(
        "--mr-percentiles", help="Synthetic MR: reference percentiles inside the mask mapped to "
                                 "-1..1 when no dataset says (default 0.5 99.5).")] = None,
    resample_to_ref: Opt[bool, typer.Option(
        "--resample-to-ref", help="Resample a prediction/mask/labels on another grid onto the "
                                  "reference grid (linear, -1024 outside) instead of failing."
    )] = False,
    out: Opt[Path | None, typer.Option(
        "--out", help="JSON report (per subject, summary, definitions).")] = None,
    csv_path: Opt[Path | None, typer.Option("--csv", help="CSV: one row per subject.")] = None,
    markdown: Opt[Path | None, typer.Option("--markdown", help="Markdown table.")] = None,
    plots: Opt[Path | None, typer.Option(
        "--plots", help="Folder for per-subject montages and cohort box plots (PNG).")] = None,
    fail_if: Opt[list[str] | None, typer.Option(
        "--fail-if", help="CI gate, repeatable: \"mae>80\", \"ssim<0.85\", \"psnr<26\", "
                          "\"ms-ssim<0.9\" (- or _); exit 6 when any subject meets one."
    )] = None,
    device: Opt[str, typer.Option(
        "--device", help="auto, cpu or cuda (SSIM, MS-SSIM).")] = "auto",
    overwrite: Opt[bool, typer.Option("--overwrite", help="Replace existing outputs.")] = False,
    quiet: Opt[bool, typer.Option(
        "--quiet", "-q", help="No progress (a spinner on a terminal, one line per subject "
                              "otherwise).")] = False,
    distribution: Opt[bool, typer.Option(
        "--distribution", help="Score a generated SET (--pred: folder of slices) against real "
                               "slices (--ref: dataset or folder): FDS, DS, and FID/IS with "
                               "--inception.")] = False,
    inception: Opt[Path | None, typer.Option(
        "--inception", help="With --distribution: local Inception-v3 weights (pytorch-fid "
                            "pt_inception-2015-12-05-6726825d.pth or torch-fidelity layout) "
                            "for FID and IS; never downloaded.")] = None,
    dose: Opt[str | None, typer.Option(
        "--dose", help="photon or proton: plan on the reference CT, recompute on the synthetic "
                       "CT (pyRadPlan; needs pip install \"medxlate[dose]\"), report dose "
                       "differences, gamma, DVH points (docs/dose.md).")] = None,
    target: Opt[str | None, typer.Option(
        "--target", help="With --dose: a target mask on the reference grid (a folder of "
                         "<id>.nii.gz in cohort mode), RTSTRUCT:ROI (a DICOM RTSTRUCT file, or "
                         "a folder of <id>.dcm, and an ROI name), sphere:X,Y,Z,R (RAS mm) or "
                         "label:K of the subject's label map.")] = None,
    prescription: Opt[str, typer.Option(
        "--prescription", help="With --dose: total dose / fractions; the plan is normalised "
                               "to target D50 = total.")] = "60Gy/30fx",
    beams: Opt[str | None, typer.Option(
        "--beams", help="With --dose: gantry angles in degrees, e.g. 0,72,144,216,288 (default "
                        "photon: those 5; proton: 90,270).")] = None,
    dose_grid: Opt[float, typer.Option(
        "--dose-grid", help="With --dose: dose grid spacing in mm.")] = 4.0,
    dose_ct_grid: Opt[float, typer.Option(
        "--dose-ct-grid", help="With --dose: CTs finer than this (mm) are resampled to it for "
                               "the engine; the figures are computed on this grid.")] = 2.0,
    calibration: Opt[Path | None, typer.Option(
        "--calibration", help="With --dose: CSV hu,value of relative electron density "
                              "(photon) or stopping power (proton); default matRad's table."
    )] = None,
    dose_out: Opt[Path | None, typer.Option(
        "--dose-out", help="With --dose: folder for <id>_dose_ref/_dose_sct/_dose_diff.nii.gz "
                           "(Gy, on the dose CT grid), and <id>_dose_ref/_dose_sct.dcm RTDOSE "
                           "when the reference CT is DICOM.")] = None,
    workers: Opt[int, typer.Option(
        "--workers", help="Subjects evaluated in parallel processes.")] = 1,
) -> None:
    """Compare synthetic CT (or MR) with the reference: MAE, ME, PSNR, SSIM, MS-SSIM, NMSE."""
    from medxlate.errors import PartialFailure, ThresholdError
    from medxlate.evaluate.gates import failures as gate_failures
    from medxlate.evaluate.gates import parse_gate
    from medxlate.evaluate.pairs import find_cases
    from medxlate.evaluate.report import (
        csv_text,
        markdown_text,
        metric_names,
        summarize,
        write_json,
        write_text,
    )
    from medxlate.evaluate.run import (
        DEFAULT_HU_RANGE,
        DEFAULT_MR_PERCENTILES,
        DEFAULT_TISSUE_THRESHOLDS,
        Settings,
        evaluate_cases,
    )
    from medxlate.io.atomic import check_writable

    from medxlate.cli.evaluate_dose import dose_outputs, dose_settings
    from medxlate.errors import UsageError

    gates = [parse_gate(text) for text in (fail_if or [])]
    modality = _validate(modality, hu_range, tissue_thresholds, mr_percentiles, device)
    if workers < 1:
        raise UsageError(f"--workers must be at least 1 (got {workers})")
    if dose is not None and (distribution or inception is not None):
        raise UsageError("--dose scores paired CTs; it cannot be combined with --distribution")
    dose_cfg = dose_settings(dose, target, prescription, beams, dose_grid, dose_ct_grid,
                             calibration, dose_out, modality)
    if distribution or inception is not None:
        from medxlate.cli.evaluate_distribution import evaluate_distribution

        return evaluate_distribution(pred, ref, modality, hu_range or DEFAULT_HU_RANGE,
                                     inception, distribution, gates, out, csv_path, markdown,
                                     device, overwrite, [mask, labels, source, pairs, plots])
    _check_gate_metrics(gates, modality, dose_cfg)
    settings = Settings(modality, tuple(hu_range or DEFAULT_HU_RANGE),
                        tuple(tissue_thresholds or DEFAULT_TISSUE_THRESHOLDS),
                        tuple(mr_percentiles or DEFAULT_MR_PERCENTILES), resample_to_ref,
                        None if device == "auto" else device, dose_cfg)
    for path in (out, csv_path, markdown):
        if path is not None:
            check_writable(path, overwrite)
    cases, unmatched = find_cases(pred, ref, modality, mask, labels, source, pairs)
    outputs = {"--out": out, "--csv": csv_path, "--markdown": markdown,
               **dose_outputs(dose_cfg, cases)}
    if plots is not None and dose_cfg is not None:
        outputs.update({f"--plots ({c.id} dose)": plots / f"{c.id}_dose.png" for c in cases})
    target_path = _target_path(dose_cfg)
    _refuse_input_outputs(cases, [pred, ref, mask, labels, source, pairs, target_path,
                                  calibration], outputs, plots)
    for label, path in outputs.items():
        if label.startswith(("--dose-out", "--plots")):
            check_writable(path, overwrite)
    if plots is not None:
        for case in cases:
            check_writable(plots / f"{case.id}.png", overwrite)

    from rich.console import Console

    err = Console(stderr=True)
    if quiet or not err.is_terminal:  # a log gets one plain line per subject, no spinner
        done = []

        def line(case_id: str) -> None:
            done.append(case_id)
            if not quiet:
                print(f"[{len(done)}/{len(cases)}] {case_id}: evaluated", file=sys.stderr,
                      flush=True)

        records, failed = evaluate_cases(cases, settings, plots, overwrite, line, workers)
    else:
        with err.status("evaluating") as status:
            def progress(case_id: str) -> None:
                status.update(f"evaluated {case_id}")

            records, failed = evaluate_cases(cases, settings, plots, overwrite, progress,
                                             workers)
    if not records:  # every subject failed: exit with their code (the first's), not 8
        from medxlate.errors import MedxlateError

        error = MedxlateError("no subject could be evaluated: " +
                              "; ".join(f"{f['id']}: {f['error']}" for f in failed))
        error.exit_code = failed[0].get("exit_code", 3)
        raise error
    summary = summarize(records)
    gate_fails = gate_failures(records, gates)
    report = _report(settings, records, failed, unmatched, summary, gates, gate_fails)
    if out is not None:
        write_json(report, out, overwrite)
    if csv_path is not None:
        write_text(csv_path, csv_text(records), overwrite)
    if markdown is not None:
        write_text(markdown, markdown_text(records, summary), overwrite)
    if plots is not None and len(records) > 1:
        from medxlate.evaluate.plots import boxplots

        boxplots(records, metric_names(records), plots, overwrite)
    from medxlate.cli._console import stdout_console

    stdout_console().print(_table(records, summary, modality))  # not cut at 80 when piped
    for record in records:
        for text in record.get("warnings", ()):
            err.print(f"warning: {text}", highlight=False, markup=False)
        for text in record.get("notes", ()):
            err.print(f"note: {text}", highlight=False, markup=False, soft_wrap=True)
    if unmatched:
        err.print(f"note: {len(unmatched)} reference subject(s) without a prediction: "
                  f"{', '.join(unmatched[:10])}{' ...' if len(unmatched) > 10 else ''}")
    gate_text = "; ".join(f"{f['id']}: {f['gate']} (value {f['value']})" for f in gate_fails)
    if failed:
        msg = "; ".join(f"{f['id']}: {f['error']}" for f in failed)
        raise PartialFailure(f"{len(failed)} of {len(cases)} subject(s) failed: {msg}"
                             + (f"; thresholds also failed: {gate_text}" if gate_fails else ""))
    if gate_fails:
        ids = sorted({f["id"] for f in gate_fails})
        raise ThresholdError(f"--fail-if: {len(ids)} subject(s) failed: {gate_text}")


def _report(settings, records, failed, unmatched, summary, gates, gate_fails) -> dict:
    import datetime

    from medxlate import __version__
    from medxlate.cli.evaluate_dose import definitions as dose_definitions
    from medxlate.evaluate.definitions import definitions

    ct = settings.modality == "CT"
    low, high = settings.hu_range if ct else (None, None)
    return {
        "format": "medxlate-evaluate/1",
        "medxlate": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "modality": settings.modality,
        "settings": {
            "hu_range": list(settings.hu_range) if ct else None,
            "tissue_thresholds_hu": list(settings.tissue_thresholds) if ct else None,
            "mr_percentiles": None if ct else list(settings.mr_percentiles),
            "resample_to_ref": settings.resample_to_ref,
            "data_range": (high - low) if ct else "per subject, see subjects[].range",
            "dose": _dose_settings(settings.dose),
        },
        "definitions": {**definitions(settings.modality, *_common_range(settings, records),
                                      settings.tissue_thresholds if ct else None),
                        **dose_definitions(settings.dose)},
        "summary_statistics": "over subjects with a finite value: mean, std (ddof=1), median, "
                              "q1/q3 (25th/75th percentiles, linear), iqr = q3 - q1, min, max",
        "subjects": records,
        "summary": summary,
        "failed": failed,
        "unmatched_references": unmatched,
        "gates": {"expressions": [str(g) for g in gates], "failures": gate_fails},
    }


def _target_path(dose) -> Path | None:
    """The file or folder a --target reads (a mask or an RTSTRUCT), to keep outputs off it."""
    if dose is None:
        return None
    if isinstance(dose.target, dict):
        return dose.target.get("path")
    return dose.target


def _dose_settings(dose) -> dict | None:
    if dose is None:
        return None
    target = ({k: str(v) if isinstance(v, Path) else v for k, v in dose.target.items()}
              if isinstance(dose.target, dict) else str(dose.target))
    return {"mode": dose.mode, "prescription_gy": dose.prescription_gy,
            "fractions": dose.fractions, "target": target, "beams_deg": list(dose.beams),
            "dose_grid_mm": dose.dose_grid_mm, "ct_grid_mm": dose.ct_grid_mm,
            "bixel_width_mm": dose.bixel_width_mm,
            "calibration": str(dose.calibration) if dose.calibration else "matRad default",
            "dose_out": str(dose.out_dir) if dose.out_dir else None}


def _common_range(settings, records) -> tuple[float | None, float | None]:
    """The clip range every subject used, or (None, None) when it varies (z-scored MR)."""
    ranges = {tuple(r["range"]) for r in records}
    if settings.modality == "CT" or len(ranges) != 1:
        return tuple(settings.hu_range) if settings.modality == "CT" else (None, None)
    return ranges.pop()


def register(app: typer.Typer) -> None:
    add_command(app, "evaluate", evaluate)
