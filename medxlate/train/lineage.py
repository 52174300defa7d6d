"""The training budget of a fine-tuned checkpoint: what its ``init_weights`` had behind it.

A run started with ``--set init_weights=FILE`` records in its checkpoints' ``extra``:

    "lineage": [{"weights": name, "sha256": ..., "model": ..., "steps": n, "seconds": s}, ...]
    "total_steps": this run's steps + the lineage's, "total_seconds": likewise

(the lineage of FILE first, then FILE itself), so that a model card or `medxlate bench` can
state the whole budget of weights trained in phases. Reads metadata only (no torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def lineage_of(path: Path | str) -> list[dict[str, Any]]:
    """The phases behind the checkpoint at ``path``, ending with that checkpoint."""
    from medxlate.weights import read_meta
    from medxlate.weights.verify import sha256_file

    path = Path(path)
    meta = read_meta(path)
    extra = meta.extra or {}
    own = {"weights": path.name, "sha256": sha256_file(path), "model": meta.model,
           "steps": int(extra.get("steps") or 0),
           "seconds": round(float(extra.get("seconds") or 0.0), 3)}
    return [*list(extra.get("lineage") or []), own]


def totals(lineage: list[dict[str, Any]], steps: int, seconds: float) -> dict[str, Any]:
    """``extra`` entries of a run of ``steps`` / ``seconds`` on top of ``lineage``.

    >>> totals([{"steps": 100, "seconds": 60.0}, {"steps": 50, "seconds": 30.5}], 10, 5.0)
    {'total_steps': 160, 'total_seconds': 95.5}
    """
    return {"total_steps": steps + sum(int(p["steps"]) for p in lineage),
            "total_seconds": round(seconds + sum(float(p["seconds"]) for p in lineage), 3)}
