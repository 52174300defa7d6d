"""`medxlate models`: list the model registry."""

from __future__ import annotations

import json

import typer

from medxlate.cli._errors import add_command


def models(
    as_json: bool = typer.Option(False, "--json", help="Print the registry as JSON."),
) -> None:
    """List the registered models, their directions, configs and samplers."""
    from medxlate.models.registry import all_specs

    specs = all_specs()
    if as_json:
        typer.echo(json.dumps([s.to_json() for s in specs], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="medxlate models")
    for col in ("name", "family", "directions", "dims", "configs", "default sampler", "weights"):
        table.add_column(col)
    for s in specs:
        table.add_row(s.name, s.family, ", ".join(s.directions), s.spatial_dims,
                      ", ".join(s.configs), s.default_sampler, s.weights or "-")
    if not specs:
        table.caption = "no model is registered yet"
    Console().print(table)


def register(app: typer.Typer) -> None:
    add_command(app, "models", models)
