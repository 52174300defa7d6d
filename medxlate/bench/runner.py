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
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medxlate.bench.cohort import Cohort, TestSubject, check_cohort, prepare_cohort
from medxlate.bench.records import clean, grid_label, write_json
from medxlate.bench.spec import DIRECTIONS, BenchSpec, ModelEntry
from medxlate.errors import MedxlateError, OutputError, PartialFailure, UsageError
# the anatomy figures, for subjects with a label map (real anatomy, MR -> CT)
from medxlate.evaluate.anatomy import NAMES as ANATOMY

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


#: Version of the reference rows' recipe; a cached row of another version is made again
#: (2: the intensity map writes air outside the input's body, as synthesize does).
REFERENCE_VERSION = 2


@dataclass
class Hooks:
    """The library calls bench makes (tests count or interrupt them)."""

    train: Callable[..., Any] = _default_train
    synthesize: Callable[[Any], None] = _default_synthesize


def modality(direction: str) -> str:
    return "CT" if DIRECTIONS[direction][1] == "ct" else "MR"


def score(pred: Path, subject: TestSubject, direction: str) -> dict[str, float]:
    """`medxlate evaluate`'s metrics of one prediction inside the subject's mask, and the
    anatomy figures where the subject has a label map and the target is CT."""
    from medxlate.evaluate.pairs import Case
    from medxlate.evaluate.run import Settings, evaluate_case

    _, ref = subject.files(direction)
    record = evaluate_case(Case(subject.id, pred, ref, subject.mask),
                           Settings(modality=modality(direction), device="cpu"))
    out = {k: float(record["metrics"][k]) for k in METRICS}
    if direction == "mr->ct" and subject.labels is not None and subject.mask is not None:
        out.update(anatomy_score(pred, subject))
    return out


def anatomy_score(pred: Path, subject: TestSubject) -> dict[str, float]:
    """Bone Dice, brain above 300 HU and air MAE (medxlate.evaluate.anatomy) on the MR grid."""
    from medxlate.evaluate.anatomy import anatomy_metrics
    from medxlate.io.readers import read_volume

    arrays = [read_volume(pred, modality="CT").array, read_volume(subject.ct, modality="CT").array,
              read_volume(subject.mask).array, read_volume(subject.labels).array]
    return anatomy_metrics(*arrays)


def _mean(values: list) -> float | None:
    """Mean of the defined values (a subject without bone or air has none)."""
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def mean_metrics(cases: list[dict]) -> dict[str, float]:
    out = {k: float(np.mean([c[k] for c in cases])) for k in METRICS}
    out.update({k: _mean([c.get(k) for c in cases]) for k in ANATOMY
                if any(k in c for c in cases)})
    return out


def _tag(contrast: str | None) -> str:
    """The file-name suffix of a contrast ("" for a single-contrast cohort, as before)."""
    return "" if contrast is None else f"-{contrast}"


class Bench:
    def __init__(self, spec: BenchSpec, workdir: Path, echo=print, hooks: Hooks | None = None,
                 device: str | None = None, progress: bool = False):
        self.spec, self.work, self.echo = spec, Path(workdir), echo
        self.progress = progress             # train's progress line on stderr
        self.hooks = hooks or Hooks()
        self.device = device or spec.device
        self.cohort: Cohort | None = None

    # -- state ----------------------------------------------------------------------------
    def finished_rows(self, entry: ModelEntry) -> list[dict[str, Any]]:
        """The rows (one per test contrast) of an earlier run of this very entry that
        finished."""
        rows = []
        sha = self._shipped_sha(entry)
        for contrast in self.cohort.contrasts:
            done = self.work / "models" / entry.slug / f"row{_tag(contrast)}.json"
            if done.is_file():
                row = json.loads(done.read_text())
                if row["entry"] != clean(entry.record()):
                    continue
                if _current(row, sha):
                    rows.append(row)
                else:
                    self.echo(f"bench: {entry.label}{_tag(contrast)}: left out, the shipped "
                              "weights changed since it was made (run it with --models)")
        return rows

    def _shipped_sha(self, entry: ModelEntry) -> str | None:
        """The sha256 of the shipped weights of a ``weights: shipped`` entry (None otherwise):
        a row of shipped weights holds only while the shipped file is the one it was made with."""
        if entry.weights != "shipped":
            return None
        from medxlate.models.registry import get_spec
        from medxlate.weights import shipped_weights

        return shipped_weights(get_spec(entry.model).weights)[1]

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
        check_cohort(self.spec.cohort)          # before anything is written
        self._check_workdir()
        self.cohort = prepare_cohort(self.spec.cohort, self.work / "cohort", self.echo)
        rows, self.failed, self.errors = [], [], []
        chosen = {e.slug: e for e in entries}
        for spec_entry in self.spec.models:      # the spec's order
            entry = chosen.get(spec_entry.slug)
            if entry is None:                     # not asked for: shown when finished before
                rows += self.finished_rows(spec_entry)
                continue
            try:
                rows += self.model_rows(entry)
            except UsageError:
                raise                         # the command itself is wrong: stop here
            except MedxlateError as exc:      # e.g. a diverged loss: the other rows go on
                self.errors.append(exc)
                self.echo(f"bench: {entry.label}: failed: {exc}")
                self.failed.append({"label": entry.label, "error": str(exc),
                                    "exit_code": exc.exit_code})
        refs = []
        for direction, contrast in dict.fromkeys((r["direction"], r.get("contrast"))
                                                 for r in rows):
            refs += self.reference_rows(direction, contrast)
            grids = dict.fromkeys(tuple(r["grid"]["spacing_mm"]) if r["grid"]["spacing_mm"]
                                  else None for r in rows if r["direction"] == direction
                                  and r.get("contrast") == contrast)
            refs += [self.floor_row(direction, g, contrast) for g in grids]
        if self.spec.dose is not None:
            add_dose(self, rows, refs)
        from medxlate.bench.report import compare

        return {**compare(self.spec, self.cohort, rows, refs, self.device),
                "failed": self.failed, "dose": self.spec.dose}

    # -- references -------------------------------------------------------------------------
    def _folder(self, direction: str, contrast: str | None) -> Path:
        return self.work / "references" / f"{DIRECTIONS[direction][2]}{_tag(contrast)}"

    def _reference(self, direction: str, name: str, predict: Callable[[TestSubject], Path],
                   extra: dict, contrast: str | None = None) -> dict[str, Any]:
        done = self._folder(direction, contrast) / f"{name}.json"
        if done.is_file():
            cached = json.loads(done.read_text())
            if cached.get("version") == REFERENCE_VERSION:
                return cached
            # made by an earlier bench (e.g. an intensity map without air outside the body):
            # its predictions are made again
            shutil.rmtree(self._folder(direction, contrast) / name, ignore_errors=True)
        cases = []
        for subject in self.cohort.tests_of(contrast):
            cases.append({"id": subject.id, **score(predict(subject), subject, direction)})
        row = {"kind": "reference", "label": name, "direction": direction, "contrast": contrast,
               "metrics": mean_metrics(cases), "subjects": cases, **extra,
               "version": REFERENCE_VERSION}
        write_json(done, row)
        return row

    def _write_pred(self, path: Path, vol, array: np.ndarray) -> Path:
        from medxlate.io.readers import write_volume

        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_volume(vol.with_array(np.asarray(array, np.float32)), path)
        return path

    def reference_rows(self, direction: str, contrast: str | None = None
                       ) -> list[dict[str, Any]]:
        """Constant and intensity map, fitted on the training subjects of ``contrast``."""
        from medxlate.bench import references as R
        from medxlate.io.readers import read_volume
        from medxlate.preprocess.dataset import load_dataset

        folder = self._folder(direction, contrast)
        dataset = self.cohort.reference_dataset(contrast)
        fitted = folder / "fit.json"
        if fitted.is_file():
            fit = json.loads(fitted.read_text())
        else:
            on = f", {contrast.upper()}w" if contrast else ""
            self.echo(f"bench: fitting the reference rows ({direction}{on}) on the training "
                      "voxels")
            x, y = R.training_voxels(dataset, direction)
            imap = R.fit_map(x, y, self.spec.bins)
            fit = {"constant": float(np.median(y)), "map": imap.to_json(),
                   "voxels": int(x.size)}
            write_json(fitted, fit)
        imap = R.IntensityMap(np.asarray(fit["map"]["edges"]), np.asarray(fit["map"]["medians"]))
        norm = load_dataset(dataset).info["normalisation"]
        tgt = modality(direction)
        background = R.CT_BACKGROUND if tgt == "CT" else 0.0
        n_train = len(load_dataset(dataset).subjects("train"))

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
            if tgt == "CT":           # air outside the input's body, as synthesize writes it
                values = np.where(R.outside_input_body(vol), np.float32(background), values)
            return self._write_pred(folder / "intensity-map" / f"{s.id}.nii.gz", vol, values)

        unit = "HU" if tgt == "CT" else "normalised MR"
        budget = {"train_subjects": n_train, "voxels": fit["voxels"]}
        return [
            self._reference(direction, "constant", constant, {
                "what": f"median training-body target ({fit['constant']:.4g} {unit})",
                "budget": budget, "grid": {"spacing_mm": None}}, contrast),
            self._reference(direction, "intensity-map", mapped, {
                "what": f"median target per bin of normalised input ({self.spec.bins} bins)",
                "budget": budget, "grid": {"spacing_mm": None}, "bins": self.spec.bins},
                contrast),
        ]

    def floor_row(self, direction: str, spacing, contrast: str | None = None) -> dict[str, Any]:
        from medxlate.bench import references as R
        from medxlate.io.readers import read_volume

        name = f"floor-{grid_label(spacing).replace(' ', '')}"
        folder = self._folder(direction, contrast) / name

        def floor(s: TestSubject) -> Path:
            _, ref = s.files(direction)
            vol = read_volume(ref, modality=modality(direction))
            back = R.spacing_round_trip(vol, spacing) if spacing else vol.array
            return self._write_pred(folder / f"{s.id}.nii.gz", vol, back)

        return self._reference(direction, name, floor, {
            "what": f"the reference taken to the {grid_label(spacing)} grid and back",
            "grid": {"spacing_mm": list(spacing) if spacing else None}}, contrast)

    # -- models -----------------------------------------------------------------------------
    def model_rows(self, entry: ModelEntry) -> list[dict[str, Any]]:
        """The entry's rows, one per test contrast (trained once, scored on each)."""
        folder = self.work / "models" / entry.slug
        record = clean(entry.record())
        sha = self._shipped_sha(entry)
        rows: dict[str | None, dict] = {}
        for contrast in self.cohort.contrasts:
            done = folder / f"row{_tag(contrast)}.json"
            if done.is_file():
                row = json.loads(done.read_text())
                if row["entry"] != record:
                    raise UsageError(f"{folder} was run with another entry for "
                                     f"{entry.label!r} (e.g. another budget); choose another "
                                     f"--workdir or move {folder} away")
                if not _current(row, sha):
                    self.echo(f"bench: {entry.label}{_tag(contrast)}: the shipped weights "
                              "changed since it was made: made again")
                    continue
                self.echo(f"bench: {entry.label}{_tag(contrast)}: done before, not rerun")
                rows[contrast] = row
        todo = [c for c in self.cohort.contrasts if c not in rows]
        if todo:
            weights, trained = self._weights(entry, folder)
            for contrast in todo:
                rows[contrast] = self._model_row(entry, weights, trained, folder, contrast)
        return [rows[c] for c in self.cohort.contrasts]

    def _model_row(self, entry: ModelEntry, weights: Path, trained: bool, folder: Path,
                   contrast: str | None) -> dict[str, Any]:
        from medxlate.synth.ensemble import expand_weights
        from medxlate.weights import read_meta

        # a folder of fold runs is an ensemble: its first member describes the row
        members = expand_weights([weights]) if weights.is_dir() else [weights]
        meta = read_meta(members[0])
        extra = meta.extra or {}
        data = meta.data or {}
        cases = self._synthesize_and_score(entry, weights, folder, contrast)
        row = {"kind": "model", "label": entry.label, "model": entry.model,
               "direction": entry.direction, "contrast": contrast,
               "entry": clean(entry.record()),
               "weights": str(weights), "trained_here": trained,
               **({"weights_sha256": sha} if (sha := self._shipped_sha(entry)) else {}),
               **({"members": [str(m) for m in members]} if len(members) > 1 else {}),
               "grid": {"spacing_mm": data.get("spacing_mm"),
                        "slice_size": meta.config.get("slice_size")},
               # a checkpoint trained in phases (init_weights) states its whole budget
               "budget": {"steps": extra.get("total_steps", extra.get("steps")),
                          "minutes": (round(extra.get("total_seconds", extra["seconds"]) / 60, 2)
                                      if extra.get("seconds") is not None else None),
                          "phases": len(extra.get("lineage") or []) + 1,
                          "device": _device_label(extra.get("hardware")),
                          "train_subjects": (data.get("subjects") or {}).get("train")},
               "sampler": entry.sampler or _default_sampler(entry.model),
               "sampler_steps": entry.sampler_steps,
               "seconds_per_volume": float(np.mean([c["seconds"] for c in cases])),
               "metrics": mean_metrics(cases), "subjects": cases}
        write_json(folder / f"row{_tag(contrast)}.json", row)
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

    def _synthesize_and_score(self, entry: ModelEntry, weights: Path, folder: Path,
                              contrast: str | None = None) -> list[dict]:
        from medxlate.synth.run import SynthesizeRequest

        cases = []
        sha = self._shipped_sha(entry)
        for subject in self.cohort.tests_of(contrast):
            name = f"{subject.id}{_tag(contrast)}"
            done = folder / "subjects" / f"{name}.json"
            if done.is_file():
                case = json.loads(done.read_text())
                if _current(case, sha):
                    cases.append(case)
                    continue
            src, _ = subject.files(entry.direction)
            out = folder / "out" / f"{name}.nii.gz"
            out.parent.mkdir(parents=True, exist_ok=True)
            # Shipped weights go by name, so synthesize checks their sha256 as for users.
            shipped = entry.weights == "shipped"
            req = SynthesizeRequest(model=entry.model, inputs=src, out=out,
                                    weights=None if shipped else
                                    ([weights] if weights.is_dir() else weights),
                                    direction=DIRECTIONS[entry.direction][2],
                                    sampler=entry.sampler, steps=entry.sampler_steps,
                                    device=self.device, seed=0, overwrite=True, progress=False,
                                    tta=entry.tta)
            start = time.perf_counter()
            self.hooks.synthesize(req)
            seconds = time.perf_counter() - start
            case = {"id": subject.id, "seconds": round(seconds, 3),
                    **({"weights_sha256": sha} if sha else {}),
                    **score(out, subject, entry.direction)}
            self.echo(f"bench: {entry.label}: {name} MAE {case['mae']:.4g} "
                      f"({seconds:.1f} s)")
            write_json(done, case)
            cases.append(case)
        return cases


def _current(done: dict[str, Any], sha: str | None) -> bool:
    """Whether a finished row or subject was made with the shipped weights of sha256 ``sha``
    that a rerun would use (``sha`` None: not shipped weights, nothing to compare)."""
    return sha is None or done.get("weights_sha256") == sha


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
