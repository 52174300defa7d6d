"""Cohort policy of `medxlate synthesize`: planning, existing outputs, seeds, progress, exit codes.

- Outputs that exist without ``--overwrite``/``--skip-existing`` stop a run before any case
  is translated (exit 4).
- Stochastic samplers get a default seed (:data:`DEFAULT_SEED`) so the same command gives the
  same output; ``--seed random`` draws one (recorded in the report like any other).
- Exit code of a cohort whose cases failed: 8 when some case succeeded (or was skipped); when
  every case failed, the cases' own code (3 input, 4 output, 5 weights, 1 internal) when they
  agree, else the code of the first failed case in input order.
- Progress: tqdm bars on a terminal; when stderr is a file or a pipe, one plain line per
  volume (no carriage returns or cursor escapes) with the seconds the case itself took and
  the seconds it waited behind other cases (medxlate.synth.timing); nothing with ``--quiet``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from medxlate.errors import (
    EXIT_CODES,
    InputError,
    MedxlateError,
    OutputError,
    PartialFailure,
    UsageError,
)
from medxlate.synth.inputs import (
    Case,
    Subject,
    collect_inputs,
    collect_subjects,
    plan_cases,
    plan_subject_cases,
)

DEFAULT_SEED = 0
NOT_STARTED = "not started"


@dataclass
class Found:
    """What ``--in`` names: subjects (layout folder / cohort CSV) or plain input paths."""

    cohort: bool
    subjects: list[Subject] | None = None
    paths: list[Path] | None = None


def find_inputs(path: Path) -> Found:
    """Read ``--in`` (InputError, exit 3, when it is missing or empty)."""
    if not Path(path).exists():
        raise InputError(f"{path}: no such file or folder")
    subjects = collect_subjects(path)
    if subjects is not None:
        return Found(True, subjects=subjects)
    paths, cohort = collect_inputs(path)
    return Found(cohort, paths=paths)


def plan(found: Found, out: Path, fmt: str, uncertainty: Path | None, source: str,
         target: str) -> list[Case]:
    """Every case with its output paths (subjects: ``out/<id>/sct.nii.gz``)."""
    if found.subjects is not None:
        if uncertainty is not None and uncertainty.name.lower().endswith((".nii.gz", ".mha")):
            raise UsageError(f"--uncertainty {uncertainty}: several subjects need a folder")
        return plan_subject_cases(found.subjects, source, target, out, fmt, uncertainty)
    return plan_cases(found.paths, found.cohort, out, fmt, uncertainty)


def check_existing(cases: list[Case], overwrite: bool, skip_existing: bool) -> None:
    """OutputError (exit 4) before any work when outputs exist and neither flag says what to do."""
    if overwrite or skip_existing:
        return
    existing = [p for c in cases for p in (c.output, c.uncertainty)
                if p is not None and (p.exists() or p.is_symlink())]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputError(f"{existing[0]} exists{more}; pass --overwrite to replace or "
                          "--skip-existing to keep existing outputs")


def parse_seed(text: str | int | None) -> int | str | None:
    """``--seed``: an integer, ``random``, or None (the default seed)."""
    if text is None or isinstance(text, int):
        return text
    if text.strip().lower() == "random":
        return "random"
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--seed {text!r}: give an integer or 'random'") from None


def resolve_seed(seed: int | str | None) -> tuple[int, str]:
    """(base seed, how it was chosen: "default", "option" or "random")."""
    if seed is None:
        return DEFAULT_SEED, "default"
    if seed == "random":
        return int.from_bytes(os.urandom(4), "little"), "random"
    return int(seed), "option"


def exit_code_of(exc: BaseException) -> int:
    return exc.exit_code if isinstance(exc, MedxlateError) else 1


def raise_for_failures(cases: list[dict]) -> None:
    """The cohort exit-code policy of the module docstring (nothing when no case failed)."""
    failed = [c for c in cases if c["status"] == "failed"]
    if not failed:
        return
    text = "; ".join(f"{c['input'] or c['id']} ({c['error']})" for c in failed)
    if any(c["status"] in ("ok", "skipped") for c in cases):
        raise PartialFailure(f"{len(failed)} of {len(cases)} case(s) failed: {text}")
    codes = [c.get("exit_code", 1) for c in failed]
    error = MedxlateError(f"all {len(failed)} case(s) failed: {text}")
    error.exit_code = codes[0] if codes[0] in EXIT_CODES else 1
    raise error


class Progress:
    """Progress on stderr: bars on a terminal, plain lines otherwise, nothing when disabled."""

    def __init__(self, enabled: bool, total: int, stream=None) -> None:
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.bars = enabled and isatty
        self.plain = enabled and not isatty
        self.total = total
        self.done = 0
        self._outer = None
        if self.bars:
            from tqdm.auto import tqdm

            self._outer = tqdm(total=total, desc="volumes", unit="vol", file=self.stream)

    def slices(self, name: str):
        from tqdm.auto import tqdm

        return tqdm(desc=f"  {name}", unit="slice", leave=False, file=self.stream,
                    disable=not self.bars)

    def case_done(self, record: dict) -> None:
        self.done += 1
        if self._outer is not None:
            self._outer.update(1)
        if self.plain:
            what = record["status"]
            if what == "failed":
                what = f"failed: {record.get('error', '')}"
            queued = record.get("queue_seconds") or 0.0
            wait = f", {queued:.1f} s queued" if queued >= 0.05 else ""
            print(f"[{self.done}/{self.total}] {record['id']}: {what} "
                  f"({record.get('seconds', 0.0):.1f} s{wait})", file=self.stream, flush=True)

    def close(self) -> None:
        if self._outer is not None:
            self._outer.close()
