"""Small record helpers shared by the bench's runner and its report (JSON, grid labels)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from medxlate.io.atomic import atomic_path


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(clean(data), indent=1, sort_keys=True) + "\n")


def clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become None (PSNR of an exact prediction is +inf)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def grid_label(spacing) -> str:
    if spacing is None:
        return "native"
    s = [float(v) for v in spacing]
    return (f"{s[0]:g} mm" if len(set(s)) == 1 else "x".join(f"{v:g}" for v in s) + " mm")
