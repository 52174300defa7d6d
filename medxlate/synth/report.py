"""What a synthesize run reports: each case's status and the run's --report JSON."""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medxlate import __version__
from medxlate.synth.batch import NOT_STARTED


@dataclass
class RunResult:
    """What happened to each case (``status``: ok, skipped or failed)."""

    cases: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self.cases if c["status"] == "failed"]


def _report(req, model, sampler, direction, seed, result, started) -> dict[str, Any]:
    counts = {s.replace(" ", "_"): sum(c["status"] == s for c in result.cases)
              for s in ("ok", "skipped", "failed", NOT_STARTED)}
    return {
        "medxlate": __version__, "python": sys.version.split()[0],
        "platform": platform.platform(), "started": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 3),
        "model": {"name": model.spec.name, "weights": str(model.weights),
                  "sha256": model.sha256, "config": model.config.get("config_name"),
                  "trained_medxlate": model.meta.version},
        "direction": direction, "device": str(model.device),
        "sampler": {"name": sampler, "steps": req.steps, "eta": req.eta,
                    "samples": req.samples, "batch_size": req.batch_size},
        "seed": seed, "mask": req.mask, "num_parts": req.num_parts, "part_id": req.part_id,
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(req).items()},
        "counts": counts, "cases": result.cases,
    }
