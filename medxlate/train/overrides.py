"""Check ``--set KEY=VALUE`` overrides against the config they override: known keys, sane types.

A typo (``--set lrr=1e-4``) or a value of the wrong type (``--set lr=abc``) is a usage error
(exit 2) naming the key, instead of a silently ignored setting or a crash deep in training.

Example:
    >>> check_overrides({"lr": 1e-4, "augment": {"flip_lr": 0.0}}, {"augment": {"flip_lr": 0.5}})
    >>> check_overrides({"lr": 1e-4}, {"lrr": 1e-3})
    Traceback (most recent call last):
    ...
    medxlate.errors.UsageError: --set lrr=0.001: unknown config key 'lrr' (did you mean 'lr'?)
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from medxlate.errors import UsageError

# Keys whose value may be null although their default is not (see ENGINE_DEFAULTS' comments).
NULLABLE = ("grad_clip", "ema", "epochs", "val_sampler", "val_steps")


def _dotted(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_dotted(value, f"{name}."))
        out[name] = value
    return out


def _type_problem(default: Any, value: Any, key: str) -> str | None:
    if value is None:
        return None if default is None or key.split(".")[-1] in NULLABLE else "must not be null"
    if default is None:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "expected true or false"
    if isinstance(default, int):
        return None if isinstance(value, int) and not isinstance(value, bool) \
            else "expected an integer"
    if isinstance(default, float):
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) \
            else "expected a number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "expected a string"
    if isinstance(default, (list, tuple)):
        return None if isinstance(value, list) else "expected a list, e.g. [128,128]"
    if isinstance(default, dict):
        return None if isinstance(value, dict) else "expected a mapping of sub-keys"
    return None


def check_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> None:
    """UsageError for an override key absent from ``base`` or a value of the wrong type.

    Args:
        base: the config being overridden (engine defaults <- model config <- config file).
        overrides: nested dict parsed from ``--set`` (see :func:`medxlate.train.config.parse_set`).
    """
    known = _dotted(base)
    for key, value in _dotted(overrides).items():
        if isinstance(value, dict) and key in known and isinstance(known[key], dict):
            continue  # its leaves are checked one by one
        shown = f"--set {key}={json.dumps(value)}"
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.5)
            hint = f" (did you mean '{close[0]}'?)" if close else \
                " (the resolved config is written to RUN_DIR/config.json)"
            raise UsageError(f"{shown}: unknown config key '{key}'{hint}")
        problem = _type_problem(known[key], value, key)
        if problem:
            raise UsageError(f"{shown}: {problem} (default {json.dumps(known[key])})")
