"""`medxlate synthesize` as a library call: a cohort of cases, one model load, a report.

Every case runs in isolation: its failure is recorded and the others go on; the run then
raises :class:`~medxlate.errors.PartialFailure` (exit 8) when some case succeeded, or the
cases' own error when all failed (see :mod:`medxlate.synth.batch`). A single input re-raises
its own error. The raised error (and a KeyboardInterrupt) carries ``.result`` with every
case's status, and the --report is written first. Outputs are written atomically with the
input's exact geometry.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medxlate import __version__
from medxlate.errors import InputError, MedxlateError, UsageError
from medxlate.io.atomic import atomic_path, check_writable
from medxlate.synth.batch import (
    NOT_STARTED,
    Progress,
    check_existing,
    exit_code_of,
    find_inputs,
    parse_seed,
    plan,
    raise_for_failures,
    resolve_seed,
)
from medxlate.synth.inputs import Case, output_format, shard
from medxlate.synth.outputs import check_case_outputs, refuse_option_clashes


@dataclass
class SynthesizeRequest:
    """Every option of `medxlate synthesize` (see its --help)."""

    model: str
    inputs: Path
    out: Path
    weights: Path | list[Path] | None = None  # several (or a folder): an ensemble
    direction: str | None = None
    source: str | None = None
    target: str | None = None
    sampler: str | None = None
    steps: int | str | None = None  # N, or "a,b,c" sections (respaced)
    eta: float = 0.0
    batch_size: int | str = 8  # or "auto" (see medxlate.synth.autobatch)
    samples: int = 1
    tta: bool = False  # test-time mirroring along the axes the model's training mirrored
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
    options: dict[str, Any] | None = None  # --set: the family's inference options
    precision: str = "auto"  # auto, fp32, bf16, fp16 (see medxlate.synth.precision)
    compile: bool = False  # torch.compile the networks (eager fallback)
    overlap_io: bool = True  # cohorts: read ahead and write behind on threads (prefetch.py)
    share_batches: bool = True  # cohorts of a 2D/2.5D model: batches span volumes


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
    from medxlate.synth.autobatch import parse_batch_size
    from medxlate.synth.precision import PRECISIONS

    parse_batch_size(req.batch_size)
    if (req.precision or "auto").lower() not in PRECISIONS:
        raise UsageError(f"--precision {req.precision!r}: choose from {', '.join(PRECISIONS)}")
    if req.samples < 1:
        raise UsageError(f"--samples must be >= 1, got {req.samples}")
    several = isinstance(req.weights, list | tuple) and (
        len(req.weights) > 1 or any(Path(w).is_dir() for w in req.weights))
    if req.uncertainty is not None and req.samples < 2 and not (req.tta or several):
        raise UsageError("--uncertainty needs --samples N with N >= 2, --tta, or several "
                         "--weights (an ensemble)")
    if req.skip_existing and req.overwrite:
        raise UsageError("--skip-existing and --overwrite contradict each other")
    if req.direction is not None and req.direction not in ("mri2ct", "ct2mri"):
        raise UsageError(f"--direction {req.direction!r}: choose mri2ct or ct2mri "
                         "(or --source/--target)")


def resolve_sampler(req: SynthesizeRequest, model) -> str:
    """The sampler name, checked against the model and the --steps/--eta grammar."""
    from medxlate.diffusion.samplers import resolve_sampler as check_sampler_options

    sampler = req.sampler or model.spec.default_sampler
    if sampler not in model.spec.samplers:
        raise UsageError(f"model {model.spec.name} cannot use sampler {sampler!r} "
                         f"(choose from {', '.join(model.spec.samplers)})")
    check_sampler_options(sampler, req.steps, req.eta if req.eta else None)
    return sampler


def apply_inference_options(model, options: dict[str, Any] | None) -> None:
    """Override the checkpoint config's inference options (``--set KEY=VALUE``), e.g. the
    guidance scales of a diffusion model; only the keys its family lists in
    ``inference_options`` may change, with their default's type."""
    if not options:
        return
    from medxlate.train.overrides import check_overrides

    allowed = tuple(getattr(model.family, "inference_options", ()))
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        offered = f"choose from {', '.join(allowed)}" if allowed else "it has none"
        raise UsageError(f"--set {unknown[0]}: not an inference option of "
                         f"{model.spec.name} ({offered})")
    check_overrides({k: model.config.get(k) for k in allowed}, options)
    model.meta.config = {**model.meta.config, **options}


def resolve_translation(req: SynthesizeRequest, model) -> tuple[str, str]:
    """(source, target) modality tags for this run: --source/--target or --direction,
    else the checkpoint's own; checked against what the checkpoint learned."""
    from medxlate.models.registry import translation_label

    learned = model.translations()
    pair = model.spec.resolve_translation(req.source, req.target, req.direction,
                                          default=learned[0])
    if not any(_serves(p, pair) for p in learned):
        raise UsageError(f"these {model.spec.name} weights translate "
                         f"{', '.join(translation_label(p) for p in learned)} only, "
                         f"not {translation_label(pair)}")
    if pair[0] == "none":
        raise UsageError(f"{translation_label(pair)} is unconditional generation: use "
                         "`medxlate generate`")
    return pair


def _serves(learned: tuple[str, str], asked: tuple[str, str]) -> bool:
    from medxlate.models.registry import is_mr

    def fits(a: str, b: str) -> bool:
        return a == b or (b == "mr" and is_mr(a)) or (a == "mr" and is_mr(b))
    return fits(asked[0], learned[0]) and fits(asked[1], learned[1])


def resolve_direction(req: SynthesizeRequest, model) -> str:
    """The legacy direction name of the run's translation (MR<->CT only)."""
    from medxlate.models.registry import direction_of

    pair = resolve_translation(req, model)
    return direction_of(*pair) or f"{pair[0]}2{pair[1]}"


def run_synthesize(req: SynthesizeRequest, echo=None) -> RunResult:
    """Translate every case of ``req``; see the module docstring for error handling."""
    import torch

    from medxlate.synth.device import resolve_device
    from medxlate.synth.model import load_model
    from medxlate.synth.volume import SynthOptions

    check_request(req)
    from medxlate.synth.ensemble import expand_weights

    given = (list(req.weights) if isinstance(req.weights, list | tuple)
             else [req.weights] if req.weights is not None else [])
    weight_files = expand_weights(given) if given else [None]
    for path in weight_files:
        refuse_option_clashes(Path(req.inputs), Path(req.out), req.uncertainty, req.report,
                              path)
    started = time.time()
    found = find_inputs(req.inputs)
    cohort = found.cohort
    fmt = output_format(Path(req.out), req.out_format, cohort)
    device = resolve_device(req.device)
    model = load_model(req.model, weight_files[0], device)
    if len(weight_files) > 1 or req.tta:
        from medxlate.synth.ensemble import check_members

        if len(weight_files) > 1 and req.samples > 1:
            raise UsageError("an ensemble of several --weights averages deterministic "
                             "members: drop --samples")
        model.members = [model] + [load_model(req.model, p, device) for p in weight_files[1:]]
        check_members(model.members)
    apply_inference_options(model, req.options)
    source, target = resolve_translation(req, model)
    direction = resolve_direction(req, model)
    sampler = resolve_sampler(req, model)
    if req.samples > 1 and not model.stochastic({**model.config, "test_dropout": True}):
        raise UsageError(f"{model.spec.name} is deterministic: --samples > 1 would repeat "
                         "the same output")
    planned = plan(found, Path(req.out), fmt, req.uncertainty, source, target)
    check_case_outputs(planned, Path(req.inputs), fmt, req.report, req.overwrite)
    cases = shard(planned, req.num_parts, req.part_id)
    check_existing(cases, req.overwrite, req.skip_existing)
    from medxlate.synth.speed import prepare

    speed = prepare(model, req.precision, req.compile, req.batch_size,
                    {**model.config, "direction": direction, "source": source,
                     "target": target}, sampler, req.steps, echo)
    opts = SynthOptions(direction, sampler, req.steps, req.eta, req.samples, speed.batch_size,
                        req.mask, source, target, req.tta)
    base_seed, seed_source = resolve_seed(parse_seed(req.seed))
    result = RunResult()
    bars = Progress(req.progress, len(cases))
    ahead = writer = None
    if cohort and req.overlap_io and len(cases) > 1:
        from medxlate.synth.prefetch import Prefetcher, Writer

        ahead = Prefetcher(cases, lambda c: (None if (req.skip_existing and _done(c))
                                             or c.problem else _prefetch(c, req, model, opts,
                                                                         fmt)))
        writer = Writer()
    from medxlate.synth.stream import TileStream, can_share

    share = bool(cohort and req.share_batches and len(cases) > 1
                 and can_share(model) and not model.members)
    stream = TileStream(model, opts, speed.precision, share=share,
                        channels_last=speed.channels_last)
    pending: dict[int, tuple[dict[str, Any], float]] = {}  # cases the writer thread holds
    waiting: dict[int, tuple] = {}  # cases in the model stage (their tiles may wait)

    def fail(rec: dict[str, Any], error: BaseException, where) -> None:
        rec.update(status="failed", error=f"{type(error).__name__}: {error}",
                   exit_code=exit_code_of(error))
        if echo and not bars.plain:  # plain progress lines already say why
            echo(f"{where}: failed: {error}")

    def written(done) -> None:
        """Finish the records of cases the writer thread has written (or failed to)."""
        for key, error in done:
            rec, t_start = pending.pop(key)
            if error is not None:
                fail(rec, error, rec["input"] or rec["id"])
            rec["seconds"] = round(time.time() - t_start, 3)
            bars.case_done(rec)

    def modelled(finished) -> None:
        """Write (or hand to the writer) each case whose model stage has finished."""
        for key, output in finished:
            rec, t_start, case, finish_case, bar = waiting.pop(key)
            bar.close()
            try:
                if isinstance(output, BaseException):
                    raise output
                info, write = finish_case(output)
                rec.update(info)
                if writer is not None:  # the writer thread finishes the record
                    pending[key] = (rec, t_start)
                    writer.submit(key, write)
                    written(writer.poll())
                    continue
                write()
            except (MedxlateError, Exception) as exc:  # one bad case never stops the cohort
                if not cohort:
                    raise
                fail(rec, exc, case.source or case.subject)
            rec["seconds"] = round(time.time() - t_start, 3)
            bars.case_done(rec)

    def finish() -> None:
        bars.close()
        result.report = _report(req, model, sampler, direction, base_seed, result, started)
        result.report["seed_source"] = seed_source
        result.report["translation"] = {"source": source, "target": target}
        result.report["speed"] = {**speed.report(), "cross_volume_batches": share,
                                  "model_calls": stream.calls}
        result.report["sampler"]["batch_size"] = speed.batch_size
        if req.report is not None:
            with atomic_path(req.report, overwrite=True) as tmp:
                tmp.write_text(json.dumps(result.report, indent=2) + "\n")

    for n, case in enumerate(cases):
        seed = base_seed + case.index
        record = {"id": case.subject or case.stem, "input": str(case.source or ""),
                  "output": str(case.output),
                  "uncertainty": str(case.uncertainty) if case.uncertainty else None,
                  "seed": seed, "status": "ok"}
        t0 = time.time()
        try:
            vol = ahead.take() if ahead is not None else None
            if req.skip_existing and _done(case):
                record["status"] = "skipped"
            elif case.problem:
                raise InputError(case.problem)
            else:
                torch.manual_seed(seed)
                generator = torch.Generator(device=device).manual_seed(seed)
                finish_case, bar, finished = _one_case(case, req, model, opts, fmt, generator,
                                                       bars, vol, stream, n, speed.precision)
                waiting[n] = (record, t0, case, finish_case, bar)
                result.cases.append(record)
                modelled(finished)
                continue
        except KeyboardInterrupt as exc:  # Ctrl-C: report what was done and what was not
            modelled(stream.flush(drop=n))  # earlier cases' waiting tiles: one short batch
            if writer is not None:  # finished volumes are still written
                ahead.close()
                written(writer.finish())
            if not any(r is record for r in result.cases):
                result.cases.append(record)
                record.update(status="failed", error="interrupted", exit_code=130)
            for rec, *_, bar in waiting.values():  # tiles lost with the interrupted batch
                bar.close()
                rec.update(status="failed", error="interrupted", exit_code=130)
            result.cases.extend({"id": c.subject or c.stem, "input": str(c.source or ""),
                                 "output": str(c.output), "status": NOT_STARTED}
                                for c in cases[n + 1:])
            finish()
            exc.result = result
            raise
        except (MedxlateError, Exception) as exc:  # one bad case never stops the cohort
            if not cohort:
                raise
            fail(record, exc, case.source or case.subject)
        record["seconds"] = round(time.time() - t0, 3)
        result.cases.append(record)
        bars.case_done(record)
    modelled(stream.flush())
    if writer is not None:
        ahead.close()
        written(writer.finish())
    finish()
    try:
        raise_for_failures(result.cases)
    except MedxlateError as exc:
        exc.result = result  # the CLI still lists what was written
        raise
    return result


def _done(case: Case) -> bool:
    return case.output.exists() and (case.uncertainty is None or case.uncertainty.exists())


def _read_case(case: Case, req: SynthesizeRequest, opts, fmt: str):
    """Check the case's outputs may be written, then read its input (a reader thread may
    run this ahead of the model)."""
    from medxlate.io.dicom_write import check_own_series
    from medxlate.io.readers import read_volume
    from medxlate.synth.volume import translation_modalities

    check_writable(case.output, req.overwrite,
                   folder_check=check_own_series if fmt == "dicom" else None)
    if case.uncertainty is not None:
        check_writable(case.uncertainty, req.overwrite)
    src_mod = translation_modalities(opts)[0]
    vol = read_volume(case.source, modality=src_mod, series=req.series)
    if vol.modality not in ("unknown", src_mod):
        raise InputError(f"{case.source} is {vol.modality}, but the translation "
                         f"{opts.source}->{opts.target} reads {src_mod}")
    return vol


def _prefetch(case: Case, req: SynthesizeRequest, model, opts, fmt: str):
    """The reader thread's work: read the input and, for 2D/2.5D models, prepare it (mask,
    resampling, normalisation, slice plan) so the model thread only runs the model."""
    from medxlate.synth.volume import prepare_volume

    vol = _read_case(case, req, opts, fmt)
    if getattr(model.spec, "spatial_dims", "2d") == "3d" or model.members:
        return vol
    return vol, prepare_volume(vol, model, opts)


def _one_case(case: Case, req: SynthesizeRequest, model, opts, fmt: str, generator,
              bars, vol, stage, key, precision=None):
    """Start one case; returns ``(finish, bar, finished)``.

    ``vol`` is the input as read, or ``(input, prepared)`` from :func:`_prefetch` (None:
    read it here). A 2D/2.5D model's tiles go to ``stage`` (a
    :class:`~medxlate.synth.stream.TileStream`), which may hold the last ones until the next
    case fills their batch; a 3D model translates the volume here. ``finished`` lists the
    ``(key, output or exception)`` of the cases whose model stage ended meanwhile (this one
    among them unless its tiles wait); ``finish(output)`` gives this case's (record fields,
    job that writes its outputs), the job resampling the result back onto the input grid
    (finish_volume) first.
    """
    import contextlib

    from medxlate.io.readers import write_volume
    from medxlate.synth.grid import file_affine, restore_orientation
    from medxlate.synth.volume import (
        finish_volume,
        prepare_volume,
        synthesize_volume,
        volume_info,
    )

    prepared = None
    if isinstance(vol, tuple):
        vol, prepared = vol
    if vol is None:
        vol = _read_case(case, req, opts, fmt)
    # 3D models and ensembles / TTA translate the volume here, not through the tile stream.
    three_d = getattr(model.spec, "spatial_dims", "2d") == "3d" or bool(model.members)
    if prepared is None and not three_d:
        prepared = prepare_volume(vol, model, opts)
    bar = bars.slices(case.stem)

    def progress(n: int, total: int) -> None:
        bar.total = total
        bar.update(n)

    def finish(output):
        done = output if prepared is None else None
        info = done[2] if done is not None else volume_info(prepared)

        def write() -> None:
            sct, std, _ = done if done is not None else finish_volume(prepared, output)
            if fmt == "dicom":
                reference = vol if vol.meta.get("format") == "dicom" else None
                write_volume(sct, case.output, overwrite=req.overwrite, reference=reference,
                             description=f"medxlate synthetic {sct.modality} "
                                         f"({model.spec.name})")
            else:
                affine = file_affine(case.source)
                write_volume(restore_orientation(sct, affine), case.output,
                             overwrite=req.overwrite)
            if std is not None and case.uncertainty is not None:
                write_volume(restore_orientation(std, file_affine(case.source)),
                             case.uncertainty, overwrite=req.overwrite)

        return {"shape": list(vol.shape), "spacing_mm": list(vol.spacing), **info}, write

    if not three_d:
        return finish, bar, stage.add(key, prepared, generator, progress)
    try:
        with precision.context() if precision is not None else contextlib.nullcontext():
            if model.members:
                from medxlate.synth.ensemble import synthesize_ensemble

                return finish, bar, [(key, synthesize_ensemble(vol, model, opts, generator,
                                                               progress=progress))]
            return finish, bar, [(key, synthesize_volume(vol, model, opts, generator,
                                                         progress=progress))]
    except BaseException:
        bar.close()
        raise


def _tta_views(req, model) -> list[list[int]]:
    """The mirrorings every volume was translated with (canonical axes; [] = as is)."""
    from medxlate.synth.ensemble import mirror_views, tta_axes

    return [list(v) for v in (mirror_views(tta_axes(model)) if req.tta else [()])]


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
                  "trained_medxlate": model.meta.version,
                  "plan": model.config.get("plan"),
                  "members": [{"weights": str(m.weights), "sha256": m.sha256}
                              for m in (model.members or [model])]},
        "tta": req.tta, "tta_views": _tta_views(req, model),
        "direction": direction, "device": str(model.device),
        "sampler": {"name": sampler, "steps": req.steps, "eta": req.eta,
                    "samples": req.samples, "batch_size": req.batch_size},
        "seed": seed, "mask": req.mask, "num_parts": req.num_parts, "part_id": req.part_id,
        "options": {k: (str(v) if isinstance(v, Path) else [str(x) for x in v]
                        if k == "weights" and isinstance(v, list | tuple) else v)
                    for k, v in asdict(req).items()},
        "counts": counts, "cases": result.cases,
    }

