"""Usage errors (unknown option, missing argument, bad choice, bad number) as one line, exit 2.

Typer would draw a boxed rich panel with the usage text; scripts and logs want the same one
line as every other medxlate error: ``medxlate: error: <what> (see 'medxlate CMD --help')``.
"""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

try:  # typer >= 0.2x parses with its own vendored copy of click
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer uses click itself
    from click.exceptions import NoArgsIsHelpError, UsageError

USAGE_EXIT = 2


def usage_line(exc: UsageError) -> str:
    """The one-line message of a click usage error, with the command's help pointer."""
    message = " ".join(exc.format_message().split())
    path = exc.ctx.command_path if exc.ctx is not None else "medxlate"
    return f"medxlate: error: {message} (see '{path} --help')"


def _report(exc: UsageError):
    if isinstance(exc, NoArgsIsHelpError):
        raise exc  # `medxlate` alone shows the help, as before
    print(usage_line(exc), file=sys.stderr)
    raise typer.Exit(USAGE_EXIT) from None


class OneLineUsageGroup(TyperGroup):
    """The root group: parse errors of the group and of every subcommand become one line."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageError as exc:
            _report(exc)

    def invoke(self, ctx):
        # Subcommands build their context (and parse their options) inside Group.invoke.
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            _report(exc)
