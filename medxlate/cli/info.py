"""`medxlate info` and `medxlate convert`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from medxlate.cli._errors import add_command

SERIES_HELP = "SeriesInstanceUID or 0-based index, when a DICOM folder holds several series."
SKIP_HELP = "DICOM: ignore derived images, localizers and scouts (ImageType)."


def _print_table(title: str, rows: list[tuple[str, str]]) -> None:
    from rich.table import Table

    from medxlate.cli._console import stdout_console

    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in rows:
        table.add_row(key, value)
    stdout_console().print(table)  # redirected: not cut at 80 columns (UIDs stay whole)


def _format(key: str, value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        sep = " x " if key in ("shape", "spacing_mm") else ", "
        return sep.join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, dict):
        return "  ".join(f"{k}: {v:.6g}" if isinstance(v, float) else f"{k}: {v}"
                         for k, v in value.items())
    return str(value)


def _list_series(path: Path, skip_derived: bool, as_json: bool) -> None:
    from medxlate.io.dicom_read import list_series

    series = list_series(path, skip_derived)
    if as_json:
        typer.echo(json.dumps(series, indent=2))
        return
    _print_table(f"{path}: {len(series)} series",
                 [(str(s["index"]), (f"{s['uid']}  '{s['description']}'  {s['slices']} "
                                     f"slices  {s['modality']}")) for s in series])


def _model_info(model: str, weights: Path | None, as_json: bool) -> None:
    """What a model's weights were trained on: the record the input guard compares with."""
    from medxlate.errors import UsageError
    from medxlate.models.registry import get_spec
    from medxlate.weights import read_meta, shipped_weights

    spec = get_spec(model)
    if weights is None:
        if not spec.weights:
            raise UsageError(f"{model} ships no weights: give --weights FILE")
        weights, _ = shipped_weights(spec.weights)
    meta = read_meta(weights)
    record = (meta.data or {}).get("inputs")
    if as_json:
        typer.echo(json.dumps({"model": meta.model, "weights": str(weights),
                               "training_inputs": record}, indent=2))
        return
    if not record:
        typer.echo(f"{weights}: no training record (weights written before medxlate "
                   "recorded one): synthesize checks only modality, dimensions and grid")
        return
    from medxlate.ood.record import describe

    _print_table(f"{meta.model}: trained on ({weights.name})", describe(record))


def _checkpoint_info(path: Path, as_json: bool) -> None:
    """What a checkpoint or a run folder says about its model (the plan first)."""
    from medxlate.errors import InputError

    if path.is_dir():
        try:
            config = json.loads((path / "config.json").read_text())
            folds = path / "folds.json"
            fold = json.loads(folds.read_text()) if folds.is_file() else None
        except ValueError as exc:
            raise InputError(f"{path}: unreadable run files ({exc})") from exc
        model = None
    else:
        from medxlate.weights import read_meta

        meta = read_meta(path)
        config, model, fold = meta.config, meta.model, None
        extra = meta.extra or {}
    summary = {"model": model, "plan": config.get("plan"),
               "fold": config.get("fold"), "n_folds": config.get("n_folds"),
               "folds": fold, "steps": config.get("steps"), "seed": config.get("seed")}
    if model is not None and extra.get("lineage"):   # trained in phases (init_weights)
        summary.update({"phases": len(extra["lineage"]) + 1,
                        "total_steps": extra.get("total_steps"),
                        "total_minutes": round(float(extra.get("total_seconds") or 0) / 60, 1),
                        "started_from": [f"{p['weights']} ({p['model']}, {p['steps']} steps, "
                                         f"sha256 {p['sha256'][:12]})"
                                         for p in extra["lineage"]]})
    summary = {k: v for k, v in summary.items() if v is not None}
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    plan = summary.pop("plan", None) or {}
    rows = [(k, _format(k, v)) for k, v in summary.items() if k != "folds"]
    rows += [(f"plan.{k}", json.dumps(v)) for k, v in plan.items()]
    _print_table(str(path), rows or [("plan", "none (not a planned model)")])


def info(
    path: Annotated[Path | None, typer.Argument(
        help="NIfTI, MHA/NRRD, DICOM folder, .dcm or .zip.")] = None,
    series: str = typer.Option(None, "--series", help=SERIES_HELP),
    skip_derived: bool = typer.Option(False, "--skip-derived", help=SKIP_HELP),
    list_series: bool = typer.Option(False, "--list-series",
                                     help="DICOM: list the series (index, UID, description, "
                                          "slices, modality) instead of reading one."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    model: str = typer.Option(None, "--model", "-m",
                              help="Instead of an image: what this model's weights were "
                                   "trained on (the input guard's record)."),
    weights: Path = typer.Option(None, "--weights", "-w",
                                 help="With --model: this weights file (default: shipped)."),
) -> None:
    """Print shape, spacing, orientation, origin, modality and value statistics.

    NaN/Inf voxels are counted (non_finite_voxels), not refused as by other commands.
    With --model NAME: the training distribution recorded in the model's weights. A
    checkpoint (.safetensors) or a training run folder prints its model, config name and,
    for planned models (unet-3d, unet-2.5d), the plan derived from the data.
    """
    from medxlate.errors import UsageError

    if model is not None:
        if path is not None:
            raise UsageError("give an image PATH or --model, not both")
        return _model_info(model, weights, as_json)
    if path is None:
        raise UsageError("give an image PATH (or --model NAME)")
    if path.suffix == ".safetensors" or (path.is_dir() and (path / "config.json").is_file()):
        return _checkpoint_info(path, as_json)
    if list_series:
        return _list_series(path, skip_derived, as_json)
    from medxlate.io import read_volume
    from medxlate.io.summary import summarize

    vol = read_volume(path, series=series, skip_derived=skip_derived, allow_nonfinite=True)
    summary = summarize(vol)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    _print_table(str(path), [(k, _format(k, v)) for k, v in summary.items()])


def convert(
    src: Annotated[Path, typer.Argument(help="Input image (any format `info` reads).")],
    dst: Annotated[Path, typer.Argument(help="Output: .nii/.nii.gz, .mha/.mhd, .nrrd/.nhdr, "
                                             "or a folder name (DICOM series).")],
    series: str = typer.Option(None, "--series", help=SERIES_HELP),
    skip_derived: bool = typer.Option(False, "--skip-derived", help=SKIP_HELP),
    modality: str = typer.Option(None, "--modality", help="CT or MR when the input does not "
                                                          "say (NIfTI, MHA)."),
    description: str = typer.Option("medxlate converted", "--description",
                                    help="SeriesDescription of a DICOM output."),
    overwrite: bool = typer.Option(False, "--overwrite", help=(
        "Replace an existing output (a DICOM folder only when it holds nothing but a series "
        "medxlate wrote).")),
) -> None:
    """Convert between NIfTI, MetaImage/NRRD and DICOM, keeping geometry and values.

    A DICOM output of a DICOM input joins its patient, study and frame of reference. A NIfTI
    output is int16 when every value is a whole number in int16's range (CT in HU), float32
    otherwise; a DICOM series is streamed into it slice by slice. Values are never changed
    (CT padding such as -2048 HU is kept).
    """
    from medxlate.errors import UsageError
    from medxlate.io import read_volume, write_volume
    from medxlate.io.guard import Output, refuse_overlaps
    from medxlate.io.readers import format_of

    if modality is not None and modality.upper() not in ("CT", "MR"):
        raise UsageError(f"--modality {modality}: choose CT or MR")
    refuse_overlaps(images=[src], outputs=[Output("output", dst, folder=dst.suffix == ""
                                                  or dst.is_dir())])
    to_nifti = dst.name.lower().endswith((".nii", ".nii.gz"))
    if to_nifti and format_of(src) == "dicom":
        from medxlate.io.dicom_convert import dicom_to_nifti

        done = dicom_to_nifti(src, dst, series, skip_derived, overwrite)
        typer.echo(f"wrote {dst} ({' x '.join(map(str, done['shape']))}, "
                   f"{done['orientation']}, {done['dtype']})")
        return
    vol = read_volume(src, series=series, skip_derived=skip_derived,
                      modality=modality.upper() if modality else "unknown")
    if modality:
        vol.modality = modality.upper()
    extra = {}
    if dst.suffix == "" or dst.is_dir():
        extra = {"description": description,
                 "reference": vol if format_of(src) == "dicom" else None}
    if to_nifti:
        import numpy as np

        from medxlate.io.dicom_convert import integer_dtype
        from medxlate.io.nifti import write_nifti

        dtype = integer_dtype(vol.array)  # whole numbers in int16 range: written as int16
        write_nifti(vol, dst, overwrite, dtype=dtype)
        typer.echo(f"wrote {dst} ({' x '.join(map(str, vol.shape))}, {vol.orientation}, "
                   f"{np.dtype(dtype).name})")
        return
    write_volume(vol, dst, overwrite=overwrite, **extra)
    typer.echo(f"wrote {dst} ({' x '.join(map(str, vol.shape))}, {vol.orientation})")


def register(app: typer.Typer) -> None:
    add_command(app, "info", info)
    add_command(app, "convert", convert)
