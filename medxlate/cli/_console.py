"""Rich consoles for command output: full width when stdout is redirected.

Rich lays tables out for 80 columns when it cannot ask a terminal, which wraps or cuts cells
(a SeriesInstanceUID becomes ``1.2.840.1136…``). Redirected to a file or a pipe, tables get
as many columns as they need instead; on a terminal, the terminal's width.
"""

from __future__ import annotations

#: Width for redirected output: wide enough for any table medxlate prints, UIDs whole.
REDIRECTED_WIDTH = 400


def stdout_console():
    """A rich Console on stdout that never squeezes tables when stdout is not a terminal."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=REDIRECTED_WIDTH)
    return console
