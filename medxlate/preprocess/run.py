"""A preprocessing run over many subjects: resume, workers, atomic commits, dataset.json.

Each subject is processed and committed by :func:`medxlate.preprocess.subject_run.run_one`
(in this process, or in a worker of :mod:`medxlate.preprocess.workers`). A subject counts as
finished only when ``subjects/<id>/subject.json`` exists with the same config hash
(configuration + input sha256), so a killed run never leaves a subject that looks finished
but is not.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medxlate import __version__
from medxlate.errors import InputError, MedxlateError, OutputError, PartialFailure
from medxlate.io.atomic import atomic_path
from medxlate.preprocess.config import STEP_ORDER, config_hash, output_config
from medxlate.preprocess.dataset import FORMAT, shard_path, volume_path
from medxlate.preprocess.inputs import SubjectInput
from medxlate.preprocess.pipeline import enabled
from medxlate.preprocess.read import sha256_of
from medxlate.preprocess.subject_run import run_one

RUN_FILE = ".preprocess-run.json"


@dataclass
class RunResult:
    """What happened: finished records (new and resumed), skipped ids, failures."""

    out: Path
    records: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def prepare_output(out: Path, cfg: dict, overwrite: bool) -> None:
    """Create ``out`` or check that it holds a run of the same configuration."""
    out = Path(out)
    run_file = out / RUN_FILE
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not run_file.is_file():
            if not overwrite:
                raise OutputError(f"--out {out} is not empty and holds no preprocessing run; "
                                  "pass --overwrite to write into it anyway")
        elif json.loads(run_file.read_text()).get("config") != output_config(cfg) \
                and not overwrite:
            raise OutputError(f"--out {out} holds a run with a different configuration; pass "
                              "--overwrite to redo it, or choose another folder")
    try:
        (out / "subjects").mkdir(parents=True, exist_ok=True)
        (out / "shards").mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out}: {exc.strerror}") from exc
    if not os.access(out, os.W_OK):
        raise OutputError(f"--out {out} is not writable")
    with atomic_path(run_file, overwrite=True) as tmp:
        tmp.write_text(json.dumps({"medxlate": __version__, "config": output_config(cfg)},
                                  indent=1))


def _finished(out: Path, s: SubjectInput, cfg: dict) -> dict | None:
    record_file = out / "subjects" / s.id / "subject.json"
    if not record_file.is_file():
        return None
    try:
        record = json.loads(record_file.read_text())
    except ValueError:
        return None
    if record.get("config_hash") != s.extra.get("config_hash"):
        return None
    if enabled(cfg, "slices") and not shard_path(out, s.id).is_file():
        return None
    if enabled(cfg, "volumes") and not volume_path(out, s.id).is_file():
        return None
    return record


def hash_inputs(subjects: list[SubjectInput], cfg: dict) -> None:
    """Fill ``extra["sha256"]`` and ``extra["config_hash"]``; unreadable inputs -> problem."""
    for s in subjects:
        if s.problem:
            continue
        try:
            hashes = {k: sha256_of(getattr(s, k)) for k in ("mr", "ct", "mask", "truth")
                      if getattr(s, k) is not None}
            for tag, path in s.extra.get("contrasts", {}).items():
                hashes[f"mr_{tag}"] = sha256_of(path)
        except OSError as exc:
            s.problem = f"cannot read an input ({exc})"
            continue
        s.extra["sha256"] = hashes
        s.extra["config_hash"] = config_hash(cfg, hashes)


def assign_splits(subjects: list[SubjectInput], cfg: dict) -> dict[str, str]:
    """Split of every subject: from the CSV when given there, else seeded by ``split.seed``.

    Subjects are shuffled as a sorted list with ``numpy.random.default_rng(seed)``;
    ``round(n * fraction)`` go to val and test, the rest to train. Failed subjects take part,
    so a failure never moves another subject to a different split.
    """
    ids = sorted(s.id for s in subjects if s.split is None)
    order = [ids[i] for i in np.random.default_rng(int(cfg["split"]["seed"])).permutation(len(ids))]
    fractions = np.asarray(cfg["split"]["fractions"], dtype=np.float64)
    fractions = fractions / fractions.sum()
    n_val, n_test = (round(len(ids) * f) for f in fractions[1:])
    splits = {sid: "val" for sid in order[:n_val]}
    splits |= {sid: "test" for sid in order[n_val:n_val + n_test]}
    splits |= {sid: "train" for sid in order[n_val + n_test:]}
    splits |= {s.id: s.split for s in subjects if s.split is not None}
    return splits


def write_manifest(out: Path, cfg: dict, paired: bool, subjects: list[SubjectInput],
                   result: RunResult) -> Path:
    """dataset.json (docs/dataset-format.md) from the finished records."""
    splits = assign_splits(subjects, cfg)
    order = {s.id: i for i, s in enumerate(subjects)}
    records = sorted(result.records, key=lambda r: order.get(r["id"], 0))
    steps = cfg["steps"]
    info = {
        "format": FORMAT, "medxlate": __version__, "region": cfg["region"], "paired": paired,
        "spacing_mm": [float(x) for x in steps["resample"]["spacing_mm"]]
        if enabled(cfg, "resample") else None,
        "slice_axis": int(steps["slices"]["axis"]),
        "slice_size": [int(x) for x in steps["slices"]["size"]],
        "steps": [{"name": name, "enabled": name in ("read", "normalise") or enabled(cfg, name),
                   "params": {k: v for k, v in steps[name].items() if k != "enabled"}}
                  for name in STEP_ORDER],
        "volume_size": [int(x) for x in steps["volumes"]["size"]]
        if enabled(cfg, "volumes") else None,
        "normalisation": cfg["normalisation"],
        "split": cfg["split"],
        "subjects": [{**r, "split": splits.get(r["id"], "train")} for r in records],
        "failed": result.failed,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = out / "dataset.json"
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(info, indent=1))
    return path


def _failure(s: SubjectInput, exc: BaseException) -> dict:
    if isinstance(exc, MedxlateError):
        message, code = str(exc), exc.exit_code
    elif isinstance(exc, MemoryError):
        message, code = "out of memory", 1
    else:
        message, code = f"internal error: {type(exc).__name__}: {exc}", 1
    if not message.startswith(s.id):
        message = f"{s.id}: {message}"
    return {"id": s.id, "error": message, "exit_code": code}


def run(subjects: list[SubjectInput], paired: bool, cfg: dict, out: Path, workers: int = 1,
        overwrite: bool = False, progress=None) -> RunResult:
    """Process ``subjects`` into the dataset folder ``out``.

    Args:
        progress: object with ``start(ids)``, ``step(id, text)``, ``done(id, ok)`` (the CLI's
            rich display), or None.

    Failures are collected in ``result.failed`` (and dataset.json); call
    :func:`raise_for_failures` to turn them into the exit-code policy.
    """
    started = time.perf_counter()
    out = Path(out)
    prepare_output(out, cfg, overwrite)
    hash_inputs(subjects, cfg)
    result = RunResult(out)
    todo = []
    for s in subjects:
        record = None if overwrite or s.problem else _finished(out, s, cfg)
        if record is not None:
            result.records.append(record)
            result.skipped.append(s.id)
        else:
            todo.append(s)
    if progress is not None:
        progress.start([s.id for s in todo], len(result.skipped))
    if workers > 1 and len(todo) > 1:
        from medxlate.preprocess.workers import run_pool

        run_pool(todo, cfg, paired, out, workers, result, progress, _failure)
    else:
        for s in todo:
            def say(text, sid=s.id):
                if progress is not None:
                    progress.step(sid, text)
            try:
                result.records.append(run_one(s, cfg, paired, out, say))
                ok = True
            except Exception as exc:  # noqa: BLE001 - one subject's failure is reported
                result.failed.append(_failure(s, exc))
                ok = False
            if progress is not None:
                progress.done(s.id, ok)
    shutil.rmtree(out / ".work", ignore_errors=True)
    result.seconds = time.perf_counter() - started
    if result.records:
        write_manifest(out, cfg, paired, subjects, result)
    return result


def raise_for_failures(result: RunResult, n_subjects: int) -> None:
    """Exit-code policy: 0 all fine; some failed -> PartialFailure (exit 8); every subject
    failed -> the subjects' own code (3 input, 4 output, 1 internal), the first failure's when
    they differ (exit 8 means partial success only)."""
    if not result.failed:
        return
    if not result.records:
        first = result.failed[0]
        more = f" (all {len(result.failed)} subjects failed)" if len(result.failed) > 1 else ""
        error = {3: InputError, 4: OutputError}.get(first["exit_code"], MedxlateError)(
            first["error"] + more)
        error.exit_code = first["exit_code"]
        raise error
    raise PartialFailure(f"{len(result.failed)} of {n_subjects} subjects failed: "
                         + ", ".join(f["id"] for f in result.failed))
