"""`medxlate preprocess`: raw MR/CT studies -> a training/evaluation dataset folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from medxlate.cli._console import stdout_console
from medxlate.cli._errors import add_command

STEPS_HELP = ("bias_correction, register, resample, mask, crop, slices, contours "
              "(read and normalise always run)")


class _Progress:
    """Rich progress: one bar over subjects, one line per running subject and its step."""

    def __init__(self, console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                                 transient=True)
        self.console = console
        self.lines: dict[str, int] = {}

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def start(self, ids: list[str], skipped: int) -> None:
        if skipped:
            self.console.print(f"{skipped} subject(s) already done with this configuration: "
                               "skipped")
        self.total = self.progress.add_task("subjects", total=len(ids))

    def step(self, sid: str, text: str) -> None:
        if sid not in self.lines:
            self.lines[sid] = self.progress.add_task(f"  {sid}", total=None)
        self.progress.update(self.lines[sid], description=f"  {sid}: {text}")

    def done(self, sid: str, ok: bool) -> None:
        if sid in self.lines:
            self.progress.remove_task(self.lines.pop(sid))
        self.progress.advance(self.total)
        self.console.print(f"{'[green]done' if ok else '[red]failed'}[/] {sid}")


class _PlainProgress:
    """Progress for a log file or pipe: one plain line per finished subject (--quiet: none)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.n, self.count = quiet, 0, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def start(self, ids: list[str], skipped: int) -> None:
        self.n = len(ids)
        if skipped and not self.quiet:
            print(f"{skipped} subject(s) already done with this configuration: skipped",
                  file=sys.stderr, flush=True)

    def step(self, sid: str, text: str) -> None:
        pass

    def done(self, sid: str, ok: bool) -> None:
        self.count += 1
        if not self.quiet:
            print(f"[{self.count}/{self.n}] {sid}: {'done' if ok else 'failed'}",
                  file=sys.stderr, flush=True)


def _summary_table(result, console) -> None:
    from rich.table import Table

    table = Table(title=f"preprocess: {result.out}")
    for column in ("subject", "status", "initial orientation", "MI before -> after",
                   "TRE median/max mm", "slices kept", "time s"):
        table.add_column(column)
    skipped = set(result.skipped)
    for r in result.records:
        reg = r.get("registration", {})
        init = reg.get("init_search", {}).get("best", "-" if not reg else "centred")
        mi = f"{reg['mi_identity']} -> {reg['mi_final']}" if reg else "-"
        tre = reg.get("tre_mm")
        tre_text = f"{tre['median']:.2f} / {tre['max']:.2f}" if tre else "-"
        kept = f"{r['n_keep']}/{r['n_slices']}" if "n_slices" in r else "-"
        total = sum(r.get("time_s", {}).values())
        status = "resumed" if r["id"] in skipped else "done"
        if reg.get("warnings"):
            status = f"{status}, flagged"
        table.add_row(r["id"], status, init, mi, tre_text, kept, f"{total:.1f}")
    if result.records:
        console.print(table)
    for f in result.failed:
        console.print(f"[red]failed[/] {f['error']}", soft_wrap=True)
    for r in result.records:  # issue 10: a doubtful registration is never reported as just done
        for text in r.get("registration", {}).get("warnings", ()):
            print(f"medxlate: warning: {r['id']}: registration check: {text}", file=sys.stderr)


def preprocess(
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder to write.")],
    mri: Annotated[Path | None, typer.Option(
        "--mri", help="MR image of one pair (NIfTI, MHA, DICOM folder or zip).")] = None,
    ct: Annotated[Path | None, typer.Option("--ct", help="CT image of one pair.")] = None,
    mask: Annotated[Path | None, typer.Option(
        "--mask", help="Body/FOV mask of the pair, in the MR's world (combined with the "
        "computed mask).")] = None,
    subject_id: Annotated[str | None, typer.Option(
        "--id", help="Subject id of the pair (default: from the MR's name or folder).")] = None,
    cohort: Annotated[Path | None, typer.Option(
        "--cohort", help="Folder <root>/<id>/{mr,ct[,mask]}.nii.gz, or a CSV with columns "
        "id,mri,ct[,mask][,split].")] = None,
    mri_dir: Annotated[Path | None, typer.Option(
        "--mri-dir", help="Unpaired MR images (one per file or DICOM folder).")] = None,
    ct_dir: Annotated[Path | None, typer.Option(
        "--ct-dir", help="Unpaired CT images.")] = None,
    region: Annotated[str | None, typer.Option(
        "--region", help="brain (1x1x1 mm) or pelvis (1x1x2.5 mm): picks the defaults. "
        "Default: brain.")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="YAML or JSON file overriding defaults.")] = None,
    settings: Annotated[list[str] | None, typer.Option(
        "--set", help="Override one setting, e.g. --set steps.crop.margin_mm=5 "
        "(repeatable).")] = None,
    transform: Annotated[str | None, typer.Option(
        "--transform", help="Registration: rigid (default), affine, or bspline (B-spline on "
        "top of rigid).")] = None,
    skip: Annotated[list[str] | None, typer.Option(
        "--skip", help=f"Switch a step off: {STEPS_HELP}.")] = None,
    n4: Annotated[bool, typer.Option("--n4", help="Run MR bias-field correction (N4).")] = False,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Seed of the train/val/test split.")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, help="Subjects processed in parallel.")] = 1,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Redo finished subjects, or write into a folder holding another "
        "run.")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No progress (bars on a terminal, one line per subject "
        "otherwise).")] = False,
) -> None:
    """Register, resample, mask, crop, normalise and slice MR/CT studies into a dataset.

    Writes OUT/dataset.json, OUT/subjects/<id>/{mr,ct,mask}.nii.gz (+ ct_to_mr.tfm) and
    OUT/shards/<id>.safetensors (docs/dataset-format.md). Rerunning skips finished subjects.
    Exit 0 when every subject succeeded (a doubtful registration is flagged, not failed), 8
    when some failed (each is reported); when all failed, their own code (the first's).
    """
    from rich.console import Console

    from medxlate.errors import UsageError
    from medxlate.preprocess.config import STEP_ORDER, build_config
    from medxlate.preprocess.inputs import discover
    from medxlate.preprocess.run import raise_for_failures, run

    overrides = list(settings or [])
    if transform is not None:
        overrides.append(f"steps.register.transform={transform}")
    for name in skip or []:
        if name not in STEP_ORDER or name in ("read", "normalise"):
            raise UsageError(f"--skip {name}: expected one of {STEPS_HELP}")
        overrides.append(f"steps.{name}.enabled=false")
    if n4:
        overrides.append("steps.bias_correction.enabled=true")
    if seed is not None:
        overrides.append(f"split.seed={seed}")
    cfg = build_config(region, config, overrides)
    subjects, paired = discover(mri=mri, ct=ct, mask=mask, subject_id=subject_id, cohort=cohort,
                                mri_dir=mri_dir, ct_dir=ct_dir)
    _refuse_input_outputs(subjects, out, [cohort, mri_dir, ct_dir])
    err = Console(stderr=True)
    if not quiet:
        err.print(f"preprocess: {len(subjects)} subject(s), region {cfg['region']}, "
                  f"{'paired' if paired else 'unpaired'}, {workers} worker(s) -> {out}")
    display = _Progress(err) if err.is_terminal and not quiet else _PlainProgress(quiet)
    with display as progress:
        result = run(subjects, paired, cfg, out, workers=workers, overwrite=overwrite,
                     progress=progress)
    _summary_table(result, stdout_console())
    typer.echo(f"wrote {out / 'dataset.json'}: {len(result.records)} subject(s), "
               f"{len(result.failed)} failed, {result.seconds:.1f} s"
               if result.records else f"no subject finished ({len(result.failed)} failed)")
    raise_for_failures(result, len(subjects))


def _refuse_input_outputs(subjects, out: Path, others: list) -> None:
    """Exit 2 when --out is an input, or when a subject's image lies where preprocess writes
    (OUT/subjects, OUT/shards): inputs are never written."""
    from medxlate.io.guard import Output, refuse_overlaps

    images = [p for s in subjects for p in (s.mr, s.ct, s.mask, s.truth)]
    refuse_overlaps(images=images, others=others, outputs=[
        Output("--out", out), Output("--out", out / "subjects", folder=True),
        Output("--out", out / "shards", folder=True)])


def register(app: typer.Typer) -> None:
    add_command(app, "preprocess", preprocess)
