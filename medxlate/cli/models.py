"""`medxlate models`: list the model registry."""

from __future__ import annotations

import json

import typer

from medxlate.cli._errors import add_command


def models(
    as_json: bool = typer.Option(False, "--json", help="Print the registry as JSON."),
) -> None:
    """List the registered models, the translations they learn (source->target modality
    tags; none->X is unconditional generation), configs and samplers."""
    from medxlate.models.registry import all_specs

    specs = all_specs()
    if as_json:
        typer.echo(json.dumps([s.to_json() for s in specs], indent=2))
        return
    from rich.table import Table

    from medxlate.cli._console import stdout_console

    table = Table(title="medxlate models")
    for col in ("name", "family", "translations", "dims", "configs", "default sampler",
                "weights"):
        table.add_column(col)
    for s in specs:
        table.add_row(s.name, s.family, translations_cell(s.translations),
                      s.spatial_dims,
                      ", ".join(s.configs), s.default_sampler, _weights_cell(s))
    if not specs:
        table.caption = "no model is registered yet"
    stdout_console().print(table)  # redirected: not squeezed to 80 columns


def translations_cell(pairs) -> str:
    """Translations grouped by source: ``t1->ct|t2, t2->ct`` (``--json`` lists every pair)."""
    if not pairs:
        return "none (autoencoder)"
    targets: dict[str, list[str]] = {}
    for source, target in pairs:
        targets.setdefault(source, []).append(target)
    return ", ".join(f"{src}->{'|'.join(tgts)}" for src, tgts in targets.items())


def _weights_cell(spec) -> str:
    """The shipped weights file, with what they are when the spec says (e.g. a variant)."""
    if not spec.weights:
        return "-"
    note = spec.extra.get("weights_note")
    return f"{spec.weights} ({note})" if note else spec.weights


def register(app: typer.Typer) -> None:
    add_command(app, "models", models)
