"""Time budgets of a run: ``--time-budget 30m`` (also ``2h``, ``90s``, ``1h30m``).

Torch-free, so the CLI checks the value before importing the engine.

Example:
    >>> parse_duration("1h30m"), parse_duration("90s"), parse_duration("2.5m")
    (5400.0, 90.0, 150.0)
"""

from __future__ import annotations

import re

from medxlate.errors import UsageError

_PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str | float | int, option: str = "--time-budget") -> float:
    """Seconds in ``text``: one or more ``<number><h|m|s>`` parts (``"2h"``, ``"1h30m"``,
    ``"90s"``) or a plain number of seconds; UsageError (exit 2) for anything else or a
    duration that is not positive."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        raw = str(text).strip().lower()
        try:
            seconds = float(raw)
        except ValueError:
            parts = _PART.findall(raw)
            if not parts or "".join(n + u for n, u in parts) != raw or \
                    len({u for _, u in parts}) != len(parts):
                raise UsageError(f"{option} {text!r}: expected a duration such as 90s, 30m, "
                                 "2h or 1h30m") from None
            seconds = sum(float(n) * _UNIT[u] for n, u in parts)
    if not seconds > 0 or seconds == float("inf"):
        raise UsageError(f"{option} {text!r}: the duration must be positive")
    return seconds


def format_duration(seconds: float) -> str:
    """``3725`` -> ``"1h02m05s"``; ``65`` -> ``"1m05s"``; ``9.4`` -> ``"9s"``."""
    s = max(0, int(round(seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m{s:02d}s"
    return f"{m}m{s:02d}s" if m else f"{s}s"
