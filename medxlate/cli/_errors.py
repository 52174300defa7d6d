"""Turn medxlate's exceptions into one stderr line and the documented exit code."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable

import typer

from medxlate.errors import MedxlateError

DEBUG_ENV = "MEDXLATE_DEBUG"


def _say(message: str) -> None:
    print(f"medxlate: {message}", file=sys.stderr)


def handled(func: Callable) -> Callable:
    """Wrap a command: MedxlateError -> its exit code, any other exception -> 1.

    Tracebacks appear only with --debug (or MEDXLATE_DEBUG=1).
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        debug = bool(os.environ.get(DEBUG_ENV))
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except MedxlateError as exc:
            if debug:
                traceback.print_exc()
            _say(f"error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _say("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - any other exception is a bug: one line
            if debug:
                traceback.print_exc()
            _say(f"internal error: {type(exc).__name__}: {exc} "
                 "(rerun with --debug for the traceback)")
            raise typer.Exit(1) from None

    return wrapper


def add_command(app: typer.Typer, name: str, func: Callable) -> None:
    """Register ``func`` as subcommand ``name`` with error handling."""
    app.command(name)(handled(func))
