"""`medxlate weights import` (foreign checkpoints) and `medxlate weights verify` (manifest,
or any file with --weights)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from medxlate.cli._errors import add_command

weights_app = typer.Typer(help="Import foreign checkpoints; verify shipped weights.",
                          no_args_is_help=True)


def import_weights(
    file: Annotated[Path, typer.Argument(
        help="The foreign checkpoint (e.g. gen_diffusive_1_500.pth).")],
    source: Annotated[str, typer.Option(
        "--from", help="Where it comes from: syndiff, or controlnet (a diffusers-format "
                       "ControlNet folder as FILE, with --pretrained).")],
    out: Annotated[Path, typer.Option(
        "--out", help="medxlate checkpoint to write (.safetensors).")],
    config: Annotated[str, typer.Option(
        "--config", help="Named config it was trained with (paper, demo).")] = "paper",
    direction: Annotated[str | None, typer.Option(
        "--direction", help="What it translates: mri2ct (conditioned on MR) or ct2mri "
                            "(default: mri2ct for syndiff, ct2mri for controlnet).",
    )] = None,
    pretrained: Annotated[Path | None, typer.Option(
        "--pretrained", help="--from controlnet: the local diffusers-format Stable Diffusion "
                             "1.5 folder the ControlNet steers.")] = None,
    ct_window: Annotated[tuple[float, float], typer.Option(
        "--ct-window", help="CT HU window mapped to [-1, 1].")] = (-1024.0, 3000.0),
    mr_percentiles: Annotated[tuple[float, float], typer.Option(
        "--mr-percentiles",
        help="MR percentiles mapped to [-1, 1] (0 100 = per-volume min-max, as SynDiff).",
    )] = (0.0, 100.0),
    spacing: Annotated[tuple[float, float, float] | None, typer.Option(
        "--spacing", help="Voxel spacing (mm) the model was trained at; synthesize resamples "
                          "inputs to it (default: use each input's own spacing).")] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an existing --out.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Convert a checkpoint of a public release into medxlate's safetensors format.

    The file is read with torch.load(weights_only=True) and mapped key by key; missing,
    unexpected or mis-shaped tensors are refused (exit 5).
    """
    from medxlate.errors import UsageError
    from medxlate.io.guard import Output, refuse_overlaps
    from medxlate.weights.importers import import_checkpoint

    if not ct_window[0] < ct_window[1] or not 0 <= mr_percentiles[0] < mr_percentiles[1] <= 100:
        raise UsageError("--ct-window needs LOW < HIGH and --mr-percentiles 0 <= LOW < HIGH "
                         "<= 100")
    if spacing is not None and min(spacing) <= 0:
        raise UsageError("--spacing values must be positive")
    refuse_overlaps(images=[file], outputs=[Output("--out", out)])
    norm = {"ct": {"kind": "window", "low": ct_window[0], "high": ct_window[1]},
            "mr": {"kind": "percentile", "low_pct": mr_percentiles[0],
                   "high_pct": mr_percentiles[1]}}
    summary = import_checkpoint(source, file, out, config=config, direction=direction,
                                normalisation=norm, overwrite=overwrite, pretrained=pretrained,
                                spacing_mm=list(spacing) if spacing else None)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"wrote {summary['out']}: {summary['model']} {summary['network']} "
               f"({summary['parameters']:,} parameters, config {summary['config']}, "
               f"{summary['direction']})")


def verify(
    folder: Annotated[Path | None, typer.Argument(
        help="Weights folder (default: the shipped weights/).")] = None,
    files: Annotated[list[Path] | None, typer.Option(
        "--weights", help="Check this file instead (repeatable): its tensors against the "
                          "digest stored at save time, its metadata, and its sha256 when a "
                          "manifest.json beside it lists it.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Check weights files: every file listed in manifest.json (present, sha256, model,
    tensor digest), or the files given with --weights. Exit 5 when one fails."""
    from medxlate.errors import UsageError, WeightsError
    from medxlate.weights import manifest, weights_dir

    if files and folder is not None:
        raise UsageError("give a weights folder or --weights FILE, not both")
    if files:
        rows = [_check(path, manifest(path.parent)["files"].get(path.name)) for path in files]
    else:
        folder = folder or weights_dir()
        if not (folder / "manifest.json").is_file():
            raise WeightsError(f"{folder / 'manifest.json'}: no manifest")
        rows = [_check(folder / name, entry)
                for name, entry in sorted(manifest(folder).get("files", {}).items())]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        for row in rows:
            typer.echo(f"{row['status']:>16}  {row['file']} ({row['model']})")
        if not rows:
            typer.echo("manifest lists no files")
    bad = [r["file"] for r in rows if r["status"] not in ("ok", "no digest")]
    if bad:
        raise WeightsError(f"{len(bad)} of {len(rows)} weights files failed: {', '.join(bad)}")


def _check(path: Path, entry: dict | None) -> dict:
    """One file's status: ok, no digest (unverifiable, a warning), or what is wrong."""
    from medxlate.errors import WeightsError
    from medxlate.weights import DigestMismatch, read_meta, sha256_file, verify_tensors

    row = {"file": str(path) if entry is None else path.name,
           "model": entry.get("model") if entry else None, "status": "ok"}
    if not path.is_file():
        return {**row, "status": "missing"}
    if entry is not None and sha256_file(path) != entry.get("sha256"):
        return {**row, "status": "sha256 mismatch"}
    try:
        meta = read_meta(path)
        row["model"] = row["model"] or meta.model
        if entry is not None and meta.model != entry.get("model"):
            return {**row, "status": "model mismatch"}
        # a manifest sha256 already vouches for a file without a digest
        if not verify_tensors(path, quiet=entry is not None) and entry is None:
            row["status"] = "no digest"
    except DigestMismatch:
        return {**row, "status": "digest mismatch"}
    except WeightsError as exc:
        return {**row, "status": f"unreadable: {exc}"}
    return row


def register(app: typer.Typer) -> None:
    add_command(weights_app, "import", import_weights)
    add_command(weights_app, "verify", verify)
    app.add_typer(weights_app, name="weights")
