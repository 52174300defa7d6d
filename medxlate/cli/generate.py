"""`medxlate generate`: synthetic CT or MR slices from an unconditional model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from medxlate.cli._errors import add_command


def _progress_printer(enabled: bool):
    """A (done, total) callback: a bar on a terminal, one line per batch otherwise."""
    if not enabled:
        return None, lambda: None
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        bar = tqdm(desc="generating", unit="slice", file=sys.stderr)

        def update(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)
        return update, bar.close

    def line(done: int, total: int) -> None:
        typer.echo(f"[{done}/{total}] slices generated", err=True)
    return line, lambda: None


def generate(
    model: Annotated[str, typer.Option(
        "--model", "-m", help="Registry name (see `medxlate models`).")],
    out: Annotated[Path, typer.Option(
        "--out", "-o",
        help="Output folder (gen_00000.nii.gz ... + generate.json), or NAME.nii.gz with "
             "--stack.")],
    weights: Annotated[Path, typer.Option(
        "--weights", "-w",
        help="A model.safetensors trained with pairing: unconditional.")],
    n: Annotated[int, typer.Option("--n", "-n", help="Number of slices.")] = 16,
    seed: Annotated[int, typer.Option(
        "--seed", help="Random seed; slice i draws from (seed, i), whatever --batch-size.")] = 0,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", "-b", help="Slices per model call.")] = 8,
    sampler: Annotated[str | None, typer.Option(
        "--sampler", help="Sampler (default: the model's, respaced-500 for mt-ddpm).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Sampler steps.")] = None,
    eta: Annotated[float, typer.Option("--eta", help="DDIM eta.")] = 0.0,
    device: Annotated[str, typer.Option(
        "--device", help="auto, cpu, cuda, cuda:N or mps (an absent device is an error).")
    ] = "auto",
    stack: Annotated[bool, typer.Option(
        "--stack", help="Write one volume with the slices stacked along the slice axis.")
    ] = False,
    report: Annotated[Path | None, typer.Option(
        "--report", help="JSON report path (default: OUT/generate.json, or NAME.json).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an earlier generate output.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress.")] = False,
) -> None:
    """Generate synthetic slices with the training spacing (NIfTI, CT in HU).

    Exit codes: 2 usage, 4 output exists or not writable, 5 weights missing or not
    unconditional.
    """
    from medxlate.generate import GenerateRequest, run_generate

    req = GenerateRequest(model=model, out=out, n=n, weights=weights, seed=seed,
                          batch_size=batch_size, sampler=sampler, steps=steps, eta=eta,
                          device=device, stack=stack, overwrite=overwrite, report=report)
    update, close = _progress_printer(not quiet)
    try:
        result = run_generate(req, progress=update)
    finally:
        close()
    typer.echo(f"{result['n']} slices ({result['translation']}, {result['sampler']} "
               f"{result['steps'] or ''}) -> {out} in {result['seconds']:.1f} s; "
               f"report {result['report']}")


def register(app: typer.Typer) -> None:
    add_command(app, "generate", generate)
