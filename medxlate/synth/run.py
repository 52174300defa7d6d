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
import time
from pathlib import Path
from typing import Any

from medxlate.errors import InputError, MedxlateError, UsageError
from medxlate.io.atomic import atomic_path
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
from medxlate.synth.case import _done, _one_case, _prefetch
from medxlate.synth.inputs import output_format, shard
from medxlate.synth.outputs import check_case_outputs, refuse_option_clashes
from medxlate.synth.report import RunResult, _report
from medxlate.synth.request import (  # noqa: F401  (SynthesizeRequest and the checks: public)
    SynthesizeRequest,
    apply_inference_options,
    check_request,
    resolve_direction,
    resolve_sampler,
    resolve_translation,
)


def run_synthesize(req: SynthesizeRequest, echo=None) -> RunResult:
    """Translate every case of ``req``; see the module docstring for error handling."""
    import torch

    from medxlate.synth.device import resolve_device
    from medxlate.synth.model import load_model
    from medxlate.synth.volume import SynthOptions

    check_request(req)
    refuse_option_clashes(Path(req.inputs), Path(req.out), req.uncertainty, req.report,
                          req.weights)
    started = time.time()
    found = find_inputs(req.inputs)
    cohort = found.cohort
    fmt = output_format(Path(req.out), req.out_format, cohort)
    device = resolve_device(req.device)
    model = load_model(req.model, req.weights, device)
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
                        req.mask, source, target)
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
                 and can_share(model))
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
