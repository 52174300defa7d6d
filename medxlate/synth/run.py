"""`medxlate synthesize` as a library call: a cohort of cases, one model load, a report.

Every case runs in isolation: its failure is recorded and the others go on; the run then
raises :class:`~medxlate.errors.PartialFailure` (exit 8). A single input re-raises its own
error (its own exit code). Outputs are written atomically with the input's exact geometry.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medxlate import __version__
from medxlate.errors import InputError, MedxlateError, PartialFailure, UsageError
from medxlate.io.atomic import atomic_path, check_writable
from medxlate.synth.inputs import Case, collect_inputs, output_format, plan_cases, shard


@dataclass
class SynthesizeRequest:
    """Every option of `medxlate synthesize` (see its --help)."""

    model: str
    inputs: Path
    out: Path
    weights: Path | None = None
    direction: str | None = None
    sampler: str | None = None
    steps: int | None = None
    eta: float = 0.0
    batch_size: int = 8
    samples: int = 1
    uncertainty: Path | None = None
    device: str = "auto"
    seed: int | None = None
    out_format: str | None = None
    mask: bool = True
    overwrite: bool = False
    skip_existing: bool = False
    num_parts: int = 1
    part_id: int = 0
    report: Path | None = None
    series: str | None = None
    progress: bool = True


@dataclass
class RunResult:
    """What happened to each case (``status``: ok, skipped or failed)."""

    cases: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self.cases if c["status"] == "failed"]


def check_request(req: SynthesizeRequest) -> None:
    """UsageError for contradictory options (before anything is loaded)."""
    if req.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {req.batch_size}")
    if req.samples < 1:
        raise UsageError(f"--samples must be >= 1, got {req.samples}")
    if req.uncertainty is not None and req.samples < 2:
        raise UsageError("--uncertainty needs --samples N with N >= 2")
    if req.skip_existing and req.overwrite:
        raise UsageError("--skip-existing and --overwrite contradict each other")
    if req.direction is not None and req.direction not in ("mri2ct", "ct2mri"):
        raise UsageError(f"--direction {req.direction!r}: choose mri2ct or ct2mri")


def resolve_sampler(req: SynthesizeRequest, model) -> str:
    """The sampler name, checked against the model and the --steps/--eta grammar."""
    from medxlate.diffusion.samplers import resolve_sampler as check_sampler_options

    sampler = req.sampler or model.spec.default_sampler
    if sampler not in model.spec.samplers:
        raise UsageError(f"model {model.spec.name} cannot use sampler {sampler!r} "
                         f"(choose from {', '.join(model.spec.samplers)})")
    check_sampler_options(sampler, req.steps, req.eta if req.eta else None)
    return sampler


def resolve_direction(req: SynthesizeRequest, model) -> str:
    direction = req.direction or model.config.get("direction", "mri2ct")
    if direction not in model.directions():
        raise UsageError(f"these {model.spec.name} weights translate "
                         f"{', '.join(model.directions())} only, not {direction}")
    return direction


def run_synthesize(req: SynthesizeRequest, echo=None) -> RunResult:
    """Translate every case of ``req``; see the module docstring for error handling."""
    import torch

    from medxlate.synth.device import resolve_device
    from medxlate.synth.model import load_model
    from medxlate.synth.volume import SynthOptions

    check_request(req)
    started = time.time()
    inputs, cohort = collect_inputs(req.inputs)
    fmt = output_format(Path(req.out), req.out_format, cohort)
    all_cases = plan_cases(inputs, cohort, Path(req.out), fmt, req.uncertainty)
    cases = shard(all_cases, req.num_parts, req.part_id)
    device = resolve_device(req.device)
    model = load_model(req.model, req.weights, device)
    direction = resolve_direction(req, model)
    sampler = resolve_sampler(req, model)
    if req.samples > 1 and not model.stochastic({**model.config, "test_dropout": True}):
        raise UsageError(f"{model.spec.name} is deterministic: --samples > 1 would repeat "
                         "the same output")
    opts = SynthOptions(direction, sampler, req.steps, req.eta, req.samples, req.batch_size,
                        req.mask)
    base_seed = req.seed if req.seed is not None else int.from_bytes(os.urandom(4), "little")
    result = RunResult()
    bars = _progress(req.progress)
    for case in bars.cases(cases):
        seed = base_seed + case.index
        record = {"input": str(case.source), "output": str(case.output),
                  "uncertainty": str(case.uncertainty) if case.uncertainty else None,
                  "seed": seed, "status": "ok"}
        t0 = time.time()
        try:
            if req.skip_existing and _done(case):
                record["status"] = "skipped"
            else:
                torch.manual_seed(seed)
                generator = torch.Generator(device=device).manual_seed(seed)
                record.update(_one_case(case, req, model, opts, fmt, generator, bars))
        except (MedxlateError, Exception) as exc:  # one bad case never stops the cohort
            if not cohort:
                raise
            record["status"] = "failed"
            record["error"] = f"{type(exc).__name__}: {exc}"
            if echo:
                echo(f"{case.source}: failed: {exc}")
        record["seconds"] = round(time.time() - t0, 3)
        result.cases.append(record)
    bars.close()
    result.report = _report(req, model, sampler, direction, base_seed, result, started)
    if req.report is not None:
        with atomic_path(req.report, overwrite=True) as tmp:
            tmp.write_text(json.dumps(result.report, indent=2) + "\n")
    if result.failed:
        raise PartialFailure(f"{len(result.failed)} of {len(result.cases)} case(s) failed: "
                             + "; ".join(f"{c['input']} ({c['error']})" for c in result.failed))
    return result


def _done(case: Case) -> bool:
    return case.output.exists() and (case.uncertainty is None or case.uncertainty.exists())


def _one_case(case: Case, req: SynthesizeRequest, model, opts, fmt: str, generator,
              bars) -> dict[str, Any]:
    from medxlate.io.readers import read_volume, write_volume
    from medxlate.synth.grid import file_affine, restore_orientation
    from medxlate.synth.volume import MODALITY, synthesize_volume

    check_writable(case.output, req.overwrite)
    if case.uncertainty is not None:
        check_writable(case.uncertainty, req.overwrite)
    src_mod = MODALITY[opts.direction][0]
    vol = read_volume(case.source, modality=src_mod, series=req.series)
    if vol.modality not in ("unknown", src_mod):
        raise InputError(f"{case.source} is {vol.modality}, but --direction {opts.direction} "
                         f"translates {src_mod}")
    bar = bars.slices(case.stem)

    def progress(n: int, total: int) -> None:
        bar.total = total
        bar.update(n)

    try:
        sct, std, info = synthesize_volume(vol, model, opts, generator, progress=progress)
    finally:
        bar.close()
    if fmt == "dicom":
        reference = vol if vol.meta.get("format") == "dicom" else None
        write_volume(sct, case.output, overwrite=req.overwrite, reference=reference,
                     description=f"medxlate synthetic {sct.modality} ({model.spec.name})")
    else:
        affine = file_affine(case.source)
        write_volume(restore_orientation(sct, affine), case.output, overwrite=req.overwrite)
    if std is not None and case.uncertainty is not None:
        write_volume(restore_orientation(std, file_affine(case.source)), case.uncertainty,
                     overwrite=req.overwrite)
    return {"shape": list(vol.shape), "spacing_mm": list(vol.spacing), **info}


def _report(req, model, sampler, direction, seed, result, started) -> dict[str, Any]:
    counts = {s: sum(c["status"] == s for c in result.cases) for s in ("ok", "skipped",
                                                                       "failed")}
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


class _progress:
    """tqdm bars over cases and over the slices of the current case (stderr)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._outer = None

    def cases(self, cases):
        if not self.enabled:
            return cases
        from tqdm.auto import tqdm

        self._outer = tqdm(cases, desc="volumes", unit="vol", file=sys.stderr)
        return self._outer

    def slices(self, name: str):
        from tqdm.auto import tqdm

        return tqdm(desc=f"  {name}", unit="slice", leave=False, file=sys.stderr,
                    disable=not self.enabled)

    def close(self) -> None:
        if self._outer is not None:
            self._outer.close()
