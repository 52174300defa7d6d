"""Run a bench: cohort, reference rows, then train -> synthesize -> evaluate per model.

Resumable: every finished piece is a file under the work folder, written atomically, and a
rerun of the same command reuses it. A finished model (``models/<slug>/row.json``) is not
trained again; a model killed while training resumes from its newest checkpoint (``train``
with ``resume=True``); held-out subjects already synthesized and scored are not redone.

Example:
    >>> from medxlate.bench import load_spec, run_bench            # doctest: +SKIP
    >>> result = run_bench(load_spec("small"), Path("W"))
    >>> result["rows"][0]["metrics"]["mae"]                        # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medxlate.bench.cohort import Cohort, TestSubject, prepare_cohort
from medxlate.bench.records import clean, grid_label, write_json
from medxlate.bench.spec import DIRECTIONS, BenchSpec, ModelEntry
from medxlate.errors import MedxlateError, OutputError, PartialFailure, UsageError

METRICS = ("mae", "me", "psnr", "ssim")


def _default_train(*args, **kwargs):
    # the same whole-volume validation as `medxlate train` (train never imports synth)
    from medxlate.synth.validation import VolumeValidation
    from medxlate.train import train

    kwargs.setdefault("volume_validator", VolumeValidation)
    return train(*args, **kwargs)


def _default_synthesize(request) -> None:
    from medxlate.synth.run import run_synthesize

    run_synthesize(request, echo=lambda line: None)


@dataclass
class Hooks:
    """The library calls bench makes (tests count or interrupt them)."""

    train: Callable[..., Any] = _default_train
    synthesize: Callable[[Any], None] = _default_synthesize


def modality(direction: str) -> str:
    return "CT" if DIRECTIONS[direction][1] == "ct" else "MR"


def score(pred: Path, subject: TestSubject, direction: str) -> dict[str, float]:
    """`medxlate evaluate`'s metrics of one prediction inside the subject's mask."""
    from medxlate.evaluate.pairs import Case
    from medxlate.evaluate.run import Settings, evaluate_case

    _, ref = subject.files(direction)
    record = evaluate_case(Case(subject.id, pred, ref, subject.mask),
                           Settings(modality=modality(direction), device="cpu"))
    return {k: float(record["metrics"][k]) for k in METRICS}


def mean_metrics(cases: list[dict]) -> dict[str, float]:
    return {k: float(np.mean([c[k] for c in cases])) for k in METRICS}


class Bench:
    def __init__(self, spec: BenchSpec, workdir: Path, echo=print, hooks: Hooks | None = None,
                 device: str | None = None, progress: bool = False):
        self.spec, self.work, self.echo = spec, Path(workdir), echo
        self.progress = progress             # train's progress line on stderr
        self.hooks = hooks or Hooks()
        self.device = device or spec.device
        self.cohort: Cohort | None = None

    # -- state ----------------------------------------------------------------------------
    def finished_row(self, entry: ModelEntry) -> dict[str, Any] | None:
        """The row of an earlier run of this very entry, if it finished."""
        done = self.work / "models" / entry.slug / "row.json"
        if not done.is_file():
            return None
        row = json.loads(done.read_text())
        return row if row["entry"] == clean(entry.record()) else None

    def _check_workdir(self) -> None:
        if self.work.exists() and not self.work.is_dir():
            raise OutputError(f"--workdir {self.work} exists and is not a folder")
        state = {"spec": self.spec.name, "cohort": self.spec.cohort}
        path = self.work / "bench-state.json"
        if path.is_file():
            old = json.loads(path.read_text())
            if old != clean(state):
                raise UsageError(f"{self.work} holds a bench of another spec or cohort "
                                 f"({old.get('spec')}); choose another --workdir")
        else:
            write_json(path, state)

    def run(self, entries: list[ModelEntry]) -> dict[str, Any]:
        from medxlate.bench.dose import add_dose, check_engine

        check_engine(self.spec)           # before any training, not after it
        self._check_workdir()
        self.cohort = prepare_cohort(self.spec.cohort, self.work / "cohort", self.echo)
        rows, self.failed, self.errors = [], [], []
        chosen = {e.slug: e for e in entries}
        for spec_entry in self.spec.models:      # the spec's order
            entry = chosen.get(spec_entry.slug)
            if entry is None:                     # not asked for: shown when finished before
                earlier = self.finished_row(spec_entry)
                if earlier is not None:
                    rows.append(earlier)
                continue
            try:
                rows.append(self.model_row(entry))
            except UsageError:
                raise                         # the command itself is wrong: stop here
            except MedxlateError as exc:      # e.g. a diverged loss: the other rows go on
                self.errors.append(exc)
                self.echo(f"bench: {entry.label}: failed: {exc}")
                self.failed.append({"label": entry.label, "error": str(exc),
                                    "exit_code": exc.exit_code})
        refs = []
        for direction in dict.fromkeys(r["direction"] for r in rows):
            refs += self.reference_rows(direction)
            grids = dict.fromkeys(tuple(r["grid"]["spacing_mm"]) if r["grid"]["spacing_mm"]
                                  else None for r in rows if r["direction"] == direction)
            refs += [self.floor_row(direction, g) for g in grids]
        if self.spec.dose is not None:
            add_dose(self, rows, refs)
        from medxlate.bench.report import compare

        return {**compare(self.spec, self.cohort, rows, refs, self.device),
                "failed": self.failed, "dose": self.spec.dose}

    # -- references -------------------------------------------------------------------------
    def _reference(self, direction: str, name: str, predict: Callable[[TestSubject], Path],
                   extra: dict) -> dict[str, Any]:
        folder = self.work / "references" / DIRECTIONS[direction][2]
        done = folder / f"{name}.json"
        if done.is_file():
            return json.loads(done.read_text())
        cases = []
        for subject in self.cohort.tests:
            cases.append({"id": subject.id, **score(predict(subject), subject, direction)})
        row = {"kind": "reference", "label": name, "direction": direction,
               "metrics": mean_metrics(cases), "subjects": cases, **extra}
        write_json(done, row)
        return row

    def _write_pred(self, path: Path, vol, array: np.ndarray) -> Path:
        from medxlate.io.readers import write_volume

        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_volume(vol.with_array(np.asarray(array, np.float32)), path)
        return path

    def reference_rows(self, direction: str) -> list[dict[str, Any]]:
        from medxlate.bench import references as R
        from medxlate.io.readers import read_volume
        from medxlate.preprocess.dataset import load_dataset

        folder = self.work / "references" / DIRECTIONS[direction][2]
        fitted = folder / "fit.json"
        if fitted.is_file():
            fit = json.loads(fitted.read_text())
        else:
            self.echo(f"bench: fitting the reference rows ({direction}) on the training voxels")
            x, y = R.training_voxels(self.cohort.dataset, direction)
            imap = R.fit_map(x, y, self.spec.bins)
            fit = {"constant": float(np.median(y)), "map": imap.to_json(),
                   "voxels": int(x.size)}
            write_json(fitted, fit)
        imap = R.IntensityMap(np.asarray(fit["map"]["edges"]), np.asarray(fit["map"]["medians"]))
        norm = load_dataset(self.cohort.dataset).info["normalisation"]
        tgt = modality(direction)
        background = R.CT_BACKGROUND if tgt == "CT" else 0.0
        n_train = len(load_dataset(self.cohort.dataset).subjects("train"))

        def constant(s: TestSubject) -> Path:
            _, ref = s.files(direction)
            vol = read_volume(ref, modality=tgt)
            values = R.in_reference_units(np.full(vol.shape, fit["constant"], np.float32),
                                          direction, ref, s.mask)
            return self._write_pred(folder / "constant" / f"{s.id}.nii.gz", vol, values)

        def mapped(s: TestSubject) -> Path:
            src, ref = s.files(direction)
            vol, x = R.normalised_input(src, direction, norm)
            values = R.in_reference_units(imap.apply(x), direction, ref, s.mask)
            return self._write_pred(folder / "intensity-map" / f"{s.id}.nii.gz", vol, values)

        unit = "HU" if tgt == "CT" else "normalised MR"
        budget = {"train_subjects": n_train, "voxels": fit["voxels"]}
        return [
            self._reference(direction, "constant", constant, {
                "what": f"median training-body target ({fit['constant']:.4g} {unit})",
                "budget": budget, "grid": {"spacing_mm": None}}),
            self._reference(direction, "intensity-map", mapped, {
                "what": f"median target per bin of normalised input ({self.spec.bins} bins)",
                "budget": budget, "grid": {"spacing_mm": None}, "bins": self.spec.bins}),
        ]

    def floor_row(self, direction: str, spacing) -> dict[str, Any]:
        from medxlate.bench import references as R
        from medxlate.io.readers import read_volume

        name = f"floor-{grid_label(spacing).replace(' ', '')}"
        folder = self.work / "references" / DIRECTIONS[direction][2] / name

        def floor(s: TestSubject) -> Path:
            _, ref = s.files(direction)
            vol = read_volume(ref, modality=modality(direction))
            back = R.spacing_round_trip(vol, spacing) if spacing else vol.array
            return self._write_pred(folder / f"{s.id}.nii.gz", vol, back)

        return self._reference(direction, name, floor, {
            "what": f"the reference taken to the {grid_label(spacing)} grid and back",
            "grid": {"spacing_mm": list(spacing) if spacing else None}})

    # -- models -----------------------------------------------------------------------------
    def model_row(self, entry: ModelEntry) -> dict[str, Any]:
        folder = self.work / "models" / entry.slug
        done = folder / "row.json"
        record = clean(entry.record())
        if done.is_file():
            row = json.loads(done.read_text())
            if row["entry"] != record:
                raise UsageError(f"{folder} was run with another entry for {entry.label!r} "
                                 f"(e.g. another budget); choose another --workdir or move "
                                 f"{folder} away")
            self.echo(f"bench: {entry.label}: done before, not rerun")
            return row
        weights, trained = self._weights(entry, folder)
        from medxlate.weights import read_meta

        meta = read_meta(weights)
        extra = meta.extra or {}
        data = meta.data or {}
        cases = self._synthesize_and_score(entry, weights, folder)
        row = {"kind": "model", "label": entry.label, "model": entry.model,
               "direction": entry.direction, "entry": record,
               "weights": str(weights), "trained_here": trained,
               "grid": {"spacing_mm": data.get("spacing_mm"),
                        "slice_size": meta.config.get("slice_size")},
               "budget": {"steps": extra.get("steps"),
                          "minutes": (round(extra["seconds"] / 60, 2)
                                      if extra.get("seconds") is not None else None),
                          "device": _device_label(extra.get("hardware")),
                          "train_subjects": (data.get("subjects") or {}).get("train")},
               "sampler": entry.sampler or _default_sampler(entry.model),
               "sampler_steps": entry.sampler_steps,
               "seconds_per_volume": float(np.mean([c["seconds"] for c in cases])),
               "metrics": mean_metrics(cases), "subjects": cases}
        write_json(done, row)
        return row

    def _weights(self, entry: ModelEntry, folder: Path) -> tuple[Path, bool]:
        if entry.weights == "shipped":
            from medxlate.models.registry import get_spec
            from medxlate.weights import shipped_weights

            return Path(shipped_weights(get_spec(entry.model).weights)[0]), False
        if entry.weights is not None:
            return Path(entry.weights), False
        return self._train(entry, folder / "run"), True

    def _train(self, entry: ModelEntry, run: Path) -> Path:
        from medxlate.train import checkpoint as ckpt

        model = run / "model.safetensors"
        if model.is_file():
            return model
        kwargs: dict[str, Any] = {"steps": entry.steps, "device": self.device,
                                  "quiet": not self.progress}
        if entry.minutes is not None:     # stops at the budget or the steps, the first
            kwargs["time_budget"] = entry.minutes * 60.0
        resumable = run.is_dir() and bool(ckpt.step_folders(run))
        if resumable:
            self.echo(f"bench: {entry.label}: resuming training from {run}")
            self.hooks.train(entry.model, self.cohort.dataset, run, resume=True, **kwargs)
        else:
            if run.exists():           # killed before its first checkpoint: start again
                shutil.rmtree(run)
            src, tgt, _ = DIRECTIONS[entry.direction]
            overrides = {**entry.set, "source": src, "target": tgt,
                         "direction": DIRECTIONS[entry.direction][2]}
            self.echo(f"bench: {entry.label}: training {entry.model} "
                      f"({_budget_text(entry)}) -> {run}")
            self.hooks.train(entry.model, self.cohort.dataset, run, config=entry.config,
                             overrides=overrides, seed=entry.seed, **kwargs)
        return model

    def _synthesize_and_score(self, entry: ModelEntry, weights: Path,
                              folder: Path) -> list[dict]:
        from medxlate.synth.run import SynthesizeRequest

        cases = []
        for subject in self.cohort.tests:
            done = folder / "subjects" / f"{subject.id}.json"
            if done.is_file():
                cases.append(json.loads(done.read_text()))
                continue
            src, _ = subject.files(entry.direction)
            out = folder / "out" / f"{subject.id}.nii.gz"
            out.parent.mkdir(parents=True, exist_ok=True)
            # Shipped weights go by name, so synthesize checks their sha256 as for users.
            shipped = entry.weights == "shipped"
            req = SynthesizeRequest(model=entry.model, inputs=src, out=out,
                                    weights=None if shipped else weights,
                                    direction=DIRECTIONS[entry.direction][2],
                                    sampler=entry.sampler, steps=entry.sampler_steps,
                                    device=self.device, seed=0, overwrite=True, progress=False,
                                    tta=entry.tta)
            start = time.perf_counter()
            self.hooks.synthesize(req)
            seconds = time.perf_counter() - start
            case = {"id": subject.id, "seconds": round(seconds, 3),
                    **score(out, subject, entry.direction)}
            self.echo(f"bench: {entry.label}: {subject.id} MAE {case['mae']:.4g} "
                      f"({seconds:.1f} s)")
            write_json(done, case)
            cases.append(case)
        return cases


def _budget_text(entry: ModelEntry) -> str:
    parts = [f"{entry.steps} steps" if entry.steps else None,
             f"{entry.minutes:g} min" if entry.minutes else None]
    return ", at most ".join(p for p in parts if p)


def _default_sampler(model: str) -> str:
    from medxlate.models.registry import get_spec

    return get_spec(model).default_sampler


def _device_label(hardware: dict | None) -> str | None:
    """"cpu (x86_64)", "cuda:0 (NVIDIA H100 ...)" from a checkpoint's ``hardware``."""
    if not hardware:
        return None
    detail = hardware.get("gpu") or hardware.get("machine")
    world = hardware.get("world_size") or 1
    text = f"{hardware.get('device')}" + (f" ({detail})" if detail else "")
    return text + (f" x{world}" if world > 1 else "")


def run_bench(spec: BenchSpec, workdir: Path, entries: list[ModelEntry] | None = None,
              echo=print, hooks: Hooks | None = None, device: str | None = None,
              progress: bool = False) -> dict:
    """Run ``entries`` (default: all of the spec's) and write W/bench.{md,json,csv,png}.

    A row that fails with a medxlate error (bad weights, a diverged loss...) is reported and
    the others go on; the outputs are written, then PartialFailure (exit 8) is raised, or the
    row's own error when every row failed. A rerun retries the failed rows.
    """
    from medxlate.bench.report import write_outputs

    bench = Bench(spec, workdir, echo, hooks, device, progress)
    entries = entries if entries is not None else spec.models
    result = bench.run(entries)
    if len(result["failed"]) == len(entries):
        raise bench.errors[0]
    write_outputs(result, Path(workdir))
    if result["failed"]:
        names = ", ".join(f["label"] for f in result["failed"])
        raise PartialFailure(f"{len(result['failed'])} of {len(entries)} rows failed ({names}); "
                             f"see {Path(workdir) / 'bench.md'}; rerun to retry them")
    return result
