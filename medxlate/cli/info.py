"""`medxlate info` and `medxlate convert`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from medxlate.cli._errors import add_command

SERIES_HELP = "SeriesInstanceUID or 0-based index, when a DICOM folder holds several series."


def info(
    path: Path = typer.Argument(..., help="NIfTI, MHA/NRRD, DICOM folder, .dcm or .zip."),
    series: str = typer.Option(None, "--series", help=SERIES_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print shape, spacing, orientation, origin, modality and value statistics."""
    from medxlate.io import read_volume
    from medxlate.io.summary import summarize

    summary = summarize(read_volume(path, series=series))
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(path), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in summary.items():
        if isinstance(value, float):
            value = f"{value:.6g}"
        elif isinstance(value, (list, tuple)):
            value = " x ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in value) \
                if key in ("shape", "spacing_mm") else ", ".join(f"{v:.6g}" for v in value)
        elif isinstance(value, dict):
            value = "  ".join(f"{k}: {v:.6g}" for k, v in value.items())
        table.add_row(key, str(value))
    Console().print(table)


def convert(
    src: Path = typer.Argument(..., help="Input image (any format `info` reads)."),
    dst: Path = typer.Argument(..., help="Output: .nii/.nii.gz, .mha, .nrrd, or a folder "
                                          "(DICOM series)."),
    series: str = typer.Option(None, "--series", help=SERIES_HELP),
    modality: str = typer.Option(None, "--modality", help="CT or MR when the input does not "
                                                          "say (NIfTI, MHA)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
) -> None:
    """Convert between NIfTI, MetaImage/NRRD and DICOM, keeping geometry and values."""
    from medxlate.io import read_volume, write_volume

    vol = read_volume(src, series=series)
    if modality:
        vol.modality = modality
    write_volume(vol, dst, overwrite=overwrite)
    typer.echo(f"wrote {dst} ({' x '.join(map(str, vol.shape))}, {vol.orientation})")


def register(app: typer.Typer) -> None:
    add_command(app, "info", info)
    add_command(app, "convert", convert)
