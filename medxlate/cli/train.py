"""`medxlate train`: train a registered model on a dataset folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medxlate.cli._errors import add_command


def train(
    model: Annotated[str, typer.Option("--model", "-m",
                                       help="Registry name (see `medxlate models`).")],
    data: Annotated[Path, typer.Option("--data", "-d",
                                       help="Dataset folder from `medxlate preprocess`.")],
    out: Annotated[Path, typer.Option("--out", "-o",
                                      help="Run folder (new or empty, or with --resume).")],
    config: Annotated[str | None, typer.Option(
        "--config", "-c", help="Named config of the model (demo, paper) or a JSON/YAML file.")
    ] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a config value: KEY=VALUE (JSON values; dotted keys for "
        "nested ones, e.g. augment.flip_lr=0.5). Repeatable.")] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1,
                                              help="Optimiser steps to train for.")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1,
                                               help="Epochs instead of --steps.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", "-b", min=1,
                                                   help="Per-process batch size.")] = None,
    device: Annotated[str, typer.Option(
        "--device", help="auto, cpu, cuda, cuda:N or mps; an absent device is an error.")
    ] = "auto",
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue from the newest checkpoint in --out.")] = False,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Seed of every random generator (default 0).")] = None,
    stage: Annotated[str | None, typer.Option(
        "--stage", help="Train one stage of a model with stages (e.g. med-dit: embedder, "
        "dit); all stages in order when omitted (same as --set stage=NAME).")] = None,
    time_budget: Annotated[str | None, typer.Option(
        "--time-budget", help="Stop after this much training time (90s, 30m, 2h, 1h30m; the "
        "run's total, counted on over --resume), at a checkpoint, after one more "
        "validation.")] = None,
    val_every: Annotated[int | None, typer.Option(
        "--val-every", min=0, help="Validate every N steps (0: only at the end); same as "
        "--set val_every=N.")] = None,
    val_volumes: Annotated[int | None, typer.Option(
        "--val-volumes", min=0, help="Validation subjects translated whole through the "
        "synthesize path at each validation (default 2; 0: slice figures only).")] = None,
    val_sampler: Annotated[str | None, typer.Option(
        "--val-sampler", help="Sampler of the validation (default: the model's).")] = None,
    patience: Annotated[int | None, typer.Option(
        "--patience", min=0, help="Warn when validation MAE has not improved for K "
        "validations (0: never).")] = None,
    early_stop: Annotated[bool, typer.Option(
        "--early-stop", help="With --patience: stop the run then (best.safetensors "
        "kept).")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No progress (a bar on a terminal, a plain line every 5 % of "
        "the steps otherwise).")] = False,
) -> None:
    """Train a model; writes RUN_DIR/model.safetensors (use with synthesize --weights).

    Data parallel under torchrun (rank 0 logs and writes), e.g.
    `torchrun --standalone --nproc_per_node 4 --no-python medxlate train --model ddpm ...`

    Writes RUN_DIR/best.safetensors (lowest validation MAE), train.csv, val.csv and
    curves.png beside model.safetensors (see docs/training.md).

    Exit codes: 1 the loss diverged (NaN/Inf; the last checkpoint stays); 2 bad option
    (unknown model or config, absent device, bad --time-budget); 3 dataset missing or
    invalid; 4 run folder not empty without --resume.
    """
    from medxlate.train.budget import parse_duration

    budget = parse_duration(time_budget) if time_budget is not None else None
    from medxlate.io.guard import Output, refuse_overlaps
    from medxlate.synth.validation import VolumeValidation
    from medxlate.train import train as run_training
    from medxlate.train.config import parse_set

    refuse_overlaps(others=[data], outputs=[Output("--out", out)])
    overrides = parse_set(set_ or [])
    if stage is not None:
        overrides["stage"] = stage
    for key, value in (("val_every", val_every), ("val_volumes", val_volumes),
                       ("val_sampler", val_sampler), ("patience", patience)):
        if value is not None:
            overrides[key] = value
    if early_stop:
        overrides["early_stop"] = True
    result = run_training(model, data, out, config=config, overrides=overrides,
                          steps=steps, epochs=epochs, batch_size=batch_size, device=device,
                          resume=resume, seed=seed, quiet=quiet, time_budget=budget,
                          volume_validator=VolumeValidation)
    import os

    if os.environ.get("RANK", "0") == "0":
        last = result.losses[-1] if result.losses else {}
        loss = f", final loss {last['loss']:.4g}" if "loss" in last else ""
        val = "".join(f", {k} {v:.4g}" for k, v in result.val.items() if k != "val_slices")
        why = {"time_budget": " (time budget spent)",
               "early_stop": " (early stop: validation stalled)"}.get(result.stopped, "")
        best = (f"; best: {result.run_dir / 'best.safetensors'} (step {result.best_step})"
                if result.best_step is not None else "")
        typer.echo(f"trained {model} for {result.steps} steps in {result.seconds:.1f} s{why}"
                   f"{loss}{val}; weights: {result.model_path}{best}")


def register(app: typer.Typer) -> None:
    add_command(app, "train", train)
