"""`medxlate bench`: train + synthesize + evaluate many models on one cohort (docs/bench.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medxlate.cli._errors import add_command


def bench(
    spec: Annotated[str, typer.Option(
        "--spec", help="A bench YAML file, or a shipped spec by name (readme, readme-dose, "
                         "small, real-anatomy).")],
    workdir: Annotated[Path, typer.Option(
        "--workdir", "-w", help="Work folder (rerun the same command to resume).")],
    models: Annotated[str | None, typer.Option(
        "--models", help="Comma-separated rows to run (labels or registry names).")] = None,
    budget_minutes: Annotated[float | None, typer.Option(
        "--budget-minutes", min=0.01, help="Train every trained row for this many minutes.")
    ] = None,
    steps: Annotated[int | None, typer.Option(
        "--steps", min=1, help="Train every trained row for this many steps.")] = None,
    device: Annotated[str | None, typer.Option(
        "--device", help="auto, cpu, cuda, cuda:N or mps (default: the spec's).")] = None,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No training progress (the bench's own lines remain).")] = False,
    no_dose: Annotated[bool, typer.Option(
        "--no-dose", help="Skip the spec's dose columns (no dose extra needed, no plans).")
    ] = False,
    labels: Annotated[Path | None, typer.Option(
        "--labels", help="Label-map folder of a real-anatomy spec (replaces its "
                         "cohort.phantom.labels).")] = None,
) -> None:
    """Train, synthesize and score many models on one cohort, beside reference rows.

    Reference rows (same run, same subjects): a constant guess, the best voxel-wise intensity
    map and each working grid's spacing floor. Writes WORKDIR/bench.md, bench.json, bench.csv
    and bench-<direction>.png; rerun the same command to resume (docs/bench.md).

    A spec with a ``dose`` key adds `evaluate --dose` columns (gamma, dose MAE, DVH points)
    for every CT row; ``--no-dose`` skips them (docs/bench.md).

    Exit codes: 2 bad spec or option (or a dose key without the dose extra); 3 cohort input
    missing or invalid (e.g. no label-map folder); 4 workdir not writable; 5 weights missing
    or corrupt; 8 some rows failed (each is reported).
    """
    from medxlate.bench import load_spec, select
    from medxlate.bench.spec import with_labels
    from medxlate.io.guard import Output, refuse_overlaps

    loaded = load_spec(spec)
    if no_dose:
        loaded.dose = None
    if labels is not None:
        loaded = with_labels(loaded, labels)
    names = [n.strip() for n in models.split(",") if n.strip()] if models else None
    entries = select(loaded, names, budget_minutes, steps)
    others = [Path(loaded.cohort[k]) for k in ("dataset", "layout") if k in loaded.cohort]
    if (loaded.cohort.get("phantom") or {}).get("labels"):    # the label maps are inputs
        others.append(Path(loaded.cohort["phantom"]["labels"]))
    refuse_overlaps(others=others, outputs=[Output("--workdir", workdir)])
    from medxlate.bench.runner import run_bench

    run_bench(loaded, workdir, entries, echo=lambda line: typer.echo(line, err=True),
              device=device, progress=not quiet)
    for name in ("bench.md", "bench.json", "bench.csv"):
        typer.echo(str(workdir / name))
    typer.echo((workdir / "bench.md").read_text())


def register(app: typer.Typer) -> None:
    add_command(app, "bench", bench)
