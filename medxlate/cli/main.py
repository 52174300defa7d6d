"""The `medxlate` command: one typer app, each subcommand in its own module."""

from __future__ import annotations

import os

import typer

from medxlate import __version__
from medxlate.cli._errors import DEBUG_ENV
from medxlate.cli._usage import OneLineUsageGroup

app = typer.Typer(
    cls=OneLineUsageGroup,
    help="Batch MRI<->CT synthesis on real NIfTI and DICOM studies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"medxlate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Batch MRI<->CT synthesis: preprocess, train, synthesize, evaluate."""
    if debug:
        os.environ[DEBUG_ENV] = "1"
    else:
        os.environ.pop(DEBUG_ENV, None)


def _register() -> None:
    # Each module adds its command(s) to `app`; the order here is the order in --help.
    from medxlate.cli import (
        bench,
        evaluate,
        generate,
        info,
        models,
        phantom,
        preprocess,
        synthesize,
        train,
        weights,
    )

    for module in (info, models, phantom, preprocess, train, synthesize, generate, evaluate,
                   bench, weights):
        module.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # `python -m medxlate.cli.main` (`python -m medxlate` is preferred)
    app(prog_name="medxlate")
