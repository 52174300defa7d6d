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
        help="Image file, DICOM series folder/zip, folder of images or series, a "
             "SynthRAD/phantom layout (<id>/mr.nii.gz, <id>/mr.mha...) or one <id>/ folder, "
             "a cohort CSV (id and mr/mri or ct columns), or a .txt/.csv list of paths.")],
    out: Annotated[Path, typer.Option(
        "--out", "-o",
        help="Output file, or folder: <id>/sct.nii.gz per subject of a layout folder or "
             "cohort CSV, {stem}_sct.nii.gz per other input; a folder for a DICOM series.")],
    weights: Annotated[list[Path] | None, typer.Option(
        "--weights", "-w",
        help="A model.safetensors (default: the model's shipped weights). Repeat it, or "
             "name a folder of fold runs (*/model.safetensors), for an ensemble: the mean "
             "of the members.")] = None,
    direction: Annotated[str | None, typer.Option(
        "--direction",
        help="mri2ct or ct2mri: aliases of --source mr --target ct and the reverse "
             "(default: the checkpoint's).")] = None,
    source: Annotated[str | None, typer.Option(
        "--source",
        help="Source modality tag: mr, t1, t1ce, t2, flair, pd or ct (default: the "
             "checkpoint's).")] = None,
    target: Annotated[str | None, typer.Option(
        "--target",
        help="Target modality tag, e.g. ct or t2, for models that learned several "
             "(see `medxlate models`).")] = None,
    sampler: Annotated[str | None, typer.Option(
        "--sampler",
        help="Sampler (default: the model's, e.g. one-shot for GANs).")] = None,
    steps: Annotated[str | None, typer.Option(
        "--steps",
        help="Sampler steps N, or section counts a,b,c for --sampler respaced "
             "(improved-diffusion respacing, e.g. 100,50).")] = None,
    eta: Annotated[float, typer.Option(
        "--eta",
        help="DDIM eta.")] = 0.0,
    batch_size: Annotated[str, typer.Option(
        "--batch-size", "-b",
        help="Slices per model call, or auto: on CUDA the largest batch that fits the free "
             "memory (one probe; a batch that still runs out of memory is halved), on the "
             "CPU a fixed 8.")] = "8",
    precision: Annotated[str, typer.Option(
        "--precision",
        help="auto, fp32, bf16 or fp16: auto is bf16 autocast on CUDA (float32 for models "
             "that need it) and float32 elsewhere.")] = "auto",
    compile_: Annotated[bool, typer.Option(
        "--compile",
        help="torch.compile the networks (slow first batch; falls back to eager with a "
             "one-line note when it cannot compile).")] = False,
    samples: Annotated[int, typer.Option(
        "--samples",
        help="Average N stochastic samples.")] = 1,
    tta: Annotated[bool, typer.Option(
        "--tta",
        help="Test-time augmentation: also translate the input mirrored along the axes the "
             "model's training mirrored, and average (2^n passes).")] = False,
    uncertainty: Annotated[Path | None, typer.Option(
        "--uncertainty",
        help="Write the per-voxel standard deviation (HU) over --samples, --tta views and "
             "ensemble members here.")] = None,
    device: Annotated[str, typer.Option(
        "--device",
        help="auto, cpu, cuda, cuda:N or mps (an absent device is an error).")] = "auto",
    seed: Annotated[str | None, typer.Option(
        "--seed",
        help="Random seed: an integer (default 0, so reruns give the same output), or "
             "'random' for a fresh one; recorded in the report; case i uses seed + i.")] = None,
    out_format: Annotated[str | None, typer.Option(
        "--out-format",
        help="nifti, mha or dicom (default: from --out, else nifti).")] = None,
    no_mask: Annotated[bool, typer.Option(
        "--no-mask",
        help="Keep the model output outside the body instead of -1024 HU.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite",
        help="Replace existing outputs (a DICOM folder only when it holds nothing but a "
             "series medxlate wrote).")] = False,
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
    set_: Annotated[list[str] | None, typer.Option(
        "--set",
        help="KEY=VALUE: an inference option of the model, e.g. image_guidance=1.5 "
             "(repeatable; see the model card).")] = None,
    strict_inputs: Annotated[bool, typer.Option(
        "--strict-inputs",
        help="Fail an input that lies outside what the model was trained on (the warnings "
             "of docs/input-guard.md) with exit 7; the rest of a cohort goes on.")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q",
        help="No progress (bars on a terminal, one line per volume otherwise).")] = False,
) -> None:
    """Translate volumes with a trained 2D/2.5D model, keeping the input's exact geometry.

    Every input is first checked against the model's training record (modality, contrast,
    region, grid, intensities): one warning line per input outside it (docs/input-guard.md).

    Exit codes: 2 usage, 3 input, 4 output (also: outputs exist, before any work), 5 weights,
    7 input outside the training distribution (--strict-inputs), 8 some cases of a cohort failed; when all failed, their own code (the first's if they
    differ).
    """
    from medxlate.diffusion._common import parse_steps
    from medxlate.synth.batch import parse_seed
    from medxlate.synth.run import SynthesizeRequest, run_synthesize

    seed = parse_seed(seed)  # an integer or "random": a usage error before anything loads
    from medxlate.synth.autobatch import parse_batch_size

    batch_size = parse_batch_size(batch_size)

    steps = parse_steps(steps)
    req = SynthesizeRequest(
        model=model, inputs=inputs, out=out,
        weights=(weights[0] if weights and len(weights) == 1 and not weights[0].is_dir()
                 else weights or None), direction=direction,
        source=source, target=target,
        sampler=sampler, steps=steps, eta=eta, batch_size=batch_size, samples=samples, tta=tta,
        uncertainty=uncertainty, device=device, seed=seed, out_format=out_format,
        mask=not no_mask, overwrite=overwrite, skip_existing=skip_existing,
        num_parts=num_parts, part_id=part_id, report=report, series=series,
        progress=not quiet, options=_options(set_), precision=precision, compile=compile_,
        strict_inputs=strict_inputs)
    try:
        result = run_synthesize(req, echo=lambda line: typer.echo(line, err=True))
    except (Exception, KeyboardInterrupt) as exc:
        # Partial success, all cases failed, or Ctrl-C: still list what was written.
        if getattr(exc, "result", None) is not None:
            _print_result(exc.result)
        raise
    _print_result(result)


def _options(items: list[str] | None) -> dict | None:
    from medxlate.train.config import parse_set

    return parse_set(items) if items else None


def _print_result(result) -> None:
    counts = result.report["counts"]
    for case in result.cases:
        if case["status"] == "ok":
            typer.echo(f"{case['input']} -> {case['output']}")
    not_started = f", {counts['not_started']} not started" if counts["not_started"] else ""
    typer.echo(f"{counts['ok']} written, {counts['skipped']} skipped, "
               f"{counts['failed']} failed{not_started} ({result.report['seconds']:.1f} s)")


def register(app: typer.Typer) -> None:
    add_command(app, "synthesize", synthesize)
