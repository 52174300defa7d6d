"""`medxlate synthesize`: translate MR to synthetic CT (or CT to MR) with a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medxlate.cli._errors import add_command


def synthesize(
    model: Annotated[str, typer.Option(
        "--model", "-m",
        help="Registry name (see `medxlate models`).")],
    inputs: Annotated[Path, typer.Option(
        "--in", "-i",
        help="Image file, DICOM series folder/zip, folder of images or series, or a "
             ".txt/.csv list of paths.")],
    out: Annotated[Path, typer.Option(
        "--out", "-o",
        help="Output file, or folder ({stem}_sct.nii.gz per input); a folder for a DICOM series.")],
    weights: Annotated[Path | None, typer.Option(
        "--weights", "-w",
        help="A model.safetensors (default: the model's shipped weights).")] = None,
    direction: Annotated[str | None, typer.Option(
        "--direction",
        help="mri2ct or ct2mri (default: the checkpoint's).")] = None,
    sampler: Annotated[str | None, typer.Option(
        "--sampler",
        help="Sampler (default: the model's, e.g. one-shot for GANs).")] = None,
    steps: Annotated[int | None, typer.Option(
        "--steps",
        help="Sampler steps.")] = None,
    eta: Annotated[float, typer.Option(
        "--eta",
        help="DDIM eta.")] = 0.0,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", "-b",
        help="Slices per model call.")] = 8,
    samples: Annotated[int, typer.Option(
        "--samples",
        help="Average N stochastic samples.")] = 1,
    uncertainty: Annotated[Path | None, typer.Option(
        "--uncertainty",
        help="Write the per-voxel standard deviation over --samples (HU) here.")] = None,
    device: Annotated[str, typer.Option(
        "--device",
        help="auto, cpu, cuda, cuda:N or mps (an absent device is an error).")] = "auto",
    seed: Annotated[int | None, typer.Option(
        "--seed",
        help="Random seed (recorded in the report; case i uses seed + i).")] = None,
    out_format: Annotated[str | None, typer.Option(
        "--out-format",
        help="nifti, mha or dicom (default: from --out, else nifti).")] = None,
    no_mask: Annotated[bool, typer.Option(
        "--no-mask",
        help="Keep the model output outside the body instead of -1024 HU.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite",
        help="Replace existing outputs.")] = False,
    skip_existing: Annotated[bool, typer.Option(
        "--skip-existing",
        help="Skip cases whose outputs exist.")] = False,
    num_parts: Annotated[int, typer.Option(
        "--num-parts",
        help="Split the sorted inputs into K parts (e.g. a SLURM array)...")] = 1,
    part_id: Annotated[int, typer.Option(
        "--part-id",
        help="...and run part i (0-based).")] = 0,
    report: Annotated[Path | None, typer.Option(
        "--report",
        help="Write a JSON run report.")] = None,
    series: Annotated[str | None, typer.Option(
        "--series",
        help="SeriesInstanceUID (or index) when a DICOM folder holds several series.")] = None,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q",
        help="No progress bars.")] = False,
) -> None:
    """Translate volumes with a trained 2D/2.5D model, keeping the input's exact geometry.

    Exit codes: 2 usage, 3 input, 4 output, 5 weights, 8 some cases of a cohort failed.
    """
    from medxlate.synth.run import SynthesizeRequest, run_synthesize

    req = SynthesizeRequest(
        model=model, inputs=inputs, out=out, weights=weights, direction=direction,
        sampler=sampler, steps=steps, eta=eta, batch_size=batch_size, samples=samples,
        uncertainty=uncertainty, device=device, seed=seed, out_format=out_format,
        mask=not no_mask, overwrite=overwrite, skip_existing=skip_existing,
        num_parts=num_parts, part_id=part_id, report=report, series=series,
        progress=not quiet)
    result = run_synthesize(req, echo=lambda line: typer.echo(line, err=True))
    counts = result.report["counts"]
    for case in result.cases:
        if case["status"] == "ok":
            typer.echo(f"{case['input']} -> {case['output']}")
    typer.echo(f"{counts['ok']} written, {counts['skipped']} skipped, "
               f"{counts['failed']} failed ({result.report['seconds']:.1f} s)")


def register(app: typer.Typer) -> None:
    add_command(app, "synthesize", synthesize)
