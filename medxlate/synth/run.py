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
import sys
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
from medxlate.synth.case import _done, _note_findings, _one_case, _prefetch, _read_case
from medxlate.synth.inputs import output_format, shard
from medxlate.synth.outputs import check_case_outputs, refuse_option_clashes
from medxlate.synth.report import RunResult, _report
from medxlate.synth.source_tag import case_finding, refuse, run_finding, warning_line
from medxlate.synth.timing import STAGE_THREADS, CaseClock, timed_call
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
    say = echo or (lambda line: print(line, file=sys.stderr))
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
    tag_finding = run_finding(model, source)  # --source names a contrast it never saw
    if tag_finding is not None:
        say(warning_line(tag_finding))
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

        ahead = Prefetcher(cases, lambda c: (
            None if (req.skip_existing and _done(c)) or c.problem
            or (req.strict_inputs and _finding(c, model, source, tag_finding))
            else timed_call(_prefetch, c, req, model, opts, fmt)))
        writer = Writer()
    from medxlate.synth.stream import TileStream, can_share

    share = bool(cohort and req.share_batches and len(cases) > 1
                 and can_share(model) and not model.members)
    stream = TileStream(model, opts, speed.precision, share=share,
                        channels_last=speed.channels_last)
    pending: dict[int, tuple[dict[str, Any], CaseClock]] = {}  # cases the writer thread holds
    waiting: dict[int, tuple] = {}  # cases in the model stage (their tiles may wait)

    def fail(rec: dict[str, Any], error: BaseException, where) -> None:
        rec.update(status="failed", error=f"{type(error).__name__}: {error}",
                   exit_code=exit_code_of(error))
        if getattr(error, "findings", None):
            rec["input_warnings"] = error.findings
        if echo and where is not None and not bars.plain:  # plain lines already say why
            echo(f"{where}: failed: {error}")

    def single_failed(rec: dict[str, Any], error: BaseException, clock) -> None:
        """A single input's failure: its record goes into the --report, written before its
        own error (and exit code) is re-raised. No echo: the CLI prints that error."""
        fail(rec, error, None)
        rec.update(clock.record())
        if not any(r is rec for r in result.cases):
            result.cases.append(rec)
        finish()
        error.result = result

    def written(done) -> None:
        """Finish the records of cases the writer thread has written (or failed to)."""
        for key, error in done:
            rec, clock = pending.pop(key)
            if error is not None:
                fail(rec, error, rec["input"] or rec["id"])
            rec.update(clock.record())
            bars.case_done(rec)

    def modelled(finished) -> None:
        """Write (or hand to the writer) each case whose model stage has finished."""
        for key, output in finished:
            rec, clock, case, finish_case, bar = waiting.pop(key)
            bar.close()
            try:
                if isinstance(output, BaseException):
                    raise output
                info, write = finish_case(output)
                rec.update(info)
                _mask_warning(rec, req.mask, say)
                if writer is not None:  # the writer thread finishes the record
                    pending[key] = (rec, clock)
                    writer.submit(key, write)
                    written(writer.poll())
                    continue
                write()
            except (MedxlateError, Exception) as exc:  # one bad case never stops the cohort
                if not cohort:
                    single_failed(rec, exc, clock)
                    raise
                fail(rec, exc, case.source or case.subject)
            rec.update(clock.record())
            bars.case_done(rec)

    def finish() -> None:
        bars.close()
        result.report = _report(req, model, sampler, direction, base_seed, result, started)
        result.report["seed_source"] = seed_source
        result.report["translation"] = {"source": source, "target": target}
        result.report["warnings"] = [warning_line(tag_finding)] if tag_finding else []
        result.report["timing"] = {
            "threads": STAGE_THREADS if ahead is not None else 1,
            "case_seconds": "each case's own work (read, prepare, its share of the model "
                            "calls, write); queue_seconds: the rest of its span"}
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
        clock = CaseClock()
        try:
            vol = None
            if ahead is not None:
                fetched = ahead.take()
                if fetched is not None:  # (input, when its read started, how long it took)
                    vol, started, seconds = fetched
                    clock = CaseClock(started, seconds)
            if req.skip_existing and _done(case):
                record["status"] = "skipped"
            elif case.problem:
                raise InputError(case.problem)
            else:
                finding = _finding(case, model, source, tag_finding)
                if finding is not None and req.strict_inputs:
                    raise refuse(finding, str(case.source or case.subject))
                if vol is None:  # read and judged by the input guard (medxlate.ood)
                    vol = clock.timed(_read_case, case, req, model, opts, fmt)
                own = [finding] if finding is not None and finding is not tag_finding else []
                _note_findings(vol, record, say, own)
                if finding is not None:  # the tag finding first, the guard's after it
                    record["input_warnings"] = [finding, *record.get("input_warnings", [])]
                torch.manual_seed(seed)
                generator = torch.Generator(device=device).manual_seed(seed)
                finish_case, bar, finished = _one_case(case, req, model, opts, fmt, generator,
                                                       bars, vol, stream, n, speed.precision,
                                                       clock)
                waiting[n] = (record, clock, case, finish_case, bar)
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
                if getattr(exc, "result", None) is None:  # else modelled() reported it
                    single_failed(record, exc, clock)
                raise
            if hasattr(exc, "seconds"):  # the reader thread's read failed: its time
                clock = CaseClock(exc.started, exc.seconds)
            fail(record, exc, case.source or case.subject)
        record.update(clock.record())
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


#: A mask leaving out more than this fraction of the voxels with signal gets a warning.
MASK_SIGNAL_LOST_WARNING = 0.02


def _finding(case, model, source, tag_finding):
    """The source-tag finding of one case: the run's ``--source`` one, else its own name's."""
    return tag_finding or case_finding(model, case.source, source)


def _mask_warning(record: dict[str, Any], masked: bool, say) -> None:
    """One warning line when the body mask leaves out much of the signal (--report too)."""
    lost = (record.get("mask") or {}).get("signal_lost")
    if not masked or lost is None or lost <= MASK_SIGNAL_LOST_WARNING:
        return
    line = (f"medxlate: warning: {record['input'] or record['id']}: the body mask leaves out "
            f"{100 * lost:.1f} % of the voxels with signal (above the noise floor); they are "
            "set to the background: check the output there, or pass --no-mask")
    record.setdefault("warnings", []).append(line)
    say(line)
