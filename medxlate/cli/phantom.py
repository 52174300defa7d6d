"""`medxlate phantom`: paired MR/CT head or pelvis phantom cohorts with exact truth."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from medxlate.cli._errors import add_command

CONTRASTS = {"t1": ("t1w",), "t2": ("t2w",), "both": ("t1w", "t2w")}
# With --labels: also proton density and FLAIR (realistic mode).
LABEL_CONTRASTS = {**CONTRASTS, "pd": ("pdw",), "flair": ("flair",),
                   "all": ("t1w", "t2w", "pdw", "flair")}


def _check(config_args: dict) -> None:
    from medxlate.errors import UsageError

    a = config_args
    if a["subjects"] < 1:
        raise UsageError(f"--subjects must be at least 1 (got {a['subjects']})")
    if a["region"] not in ("brain", "pelvis"):
        raise UsageError(f"--region must be brain or pelvis (got {a['region']!r})")
    if a["labels"] is not None:
        _check_labels(a)
    elif a["contrast"] not in CONTRASTS:
        raise UsageError(f"--contrast must be t1, t2 or both (got {a['contrast']!r})")
    if a["fmt"] not in ("nifti", "dicom"):
        raise UsageError(f"--format must be nifti or dicom (got {a['fmt']!r})")
    if a["size"] is not None and any(n < 8 or n > 2048 for n in a["size"]):
        raise UsageError(f"--size values must be between 8 and 2048 voxels (got {a['size']})")
    if a["spacing"] is not None and any(not 0.1 <= s <= 20 for s in a["spacing"]):
        raise UsageError(f"--spacing values must be between 0.1 and 20 mm (got {a['spacing']})")
    if not 0 <= a["misalign_deg"] <= 180:
        raise UsageError(f"--misalign-deg must be in [0, 180] (got {a['misalign_deg']})")
    if not 0 <= a["misalign_mm"] <= 500:
        raise UsageError(f"--misalign-mm must be in [0, 500] (got {a['misalign_mm']})")
    if a["workers"] < 1:
        raise UsageError(f"--workers must be at least 1 (got {a['workers']})")


def _check_labels(a: dict) -> None:
    from medxlate.errors import UsageError
    from medxlate.phantom.label_mr import MODES
    from medxlate.phantom.labels import SPLITS

    if a["region"] != "brain":
        raise UsageError("--labels makes heads; --region pelvis cannot be combined with it")
    if a["mr_mode"] not in MODES:
        raise UsageError(f"--mr-mode must be realistic or random (got {a['mr_mode']!r})")
    if a["contrast"] not in LABEL_CONTRASTS:
        raise UsageError(f"--contrast must be one of {', '.join(LABEL_CONTRASTS)} with --labels "
                         f"(got {a['contrast']!r})")
    if a["mr_mode"] == "random" and a["contrast"] != "t1":
        raise UsageError("--mr-mode random draws its own contrast; leave out --contrast")
    if a["split"] not in SPLITS:
        raise UsageError(f"--split must be one of {', '.join(SPLITS)} (got {a['split']!r})")
    if not 0 <= a["deformation_mm"] <= 20:
        raise UsageError(f"--deformation-mm must be in [0, 20] (got {a['deformation_mm']})")


def phantom(
    out: Path = typer.Option(..., "--out", help="Output folder (SynthRAD layout)."),  # noqa: B008
    subjects: int = typer.Option(1, "--subjects", help="Number of subjects."),
    region: str = typer.Option("brain", "--region", help="brain (head) or pelvis."),
    seed: int = typer.Option(0, "--seed", help="Cohort seed; subject i depends only on "
                                                  "(seed, region, i)."),
    size: tuple[int, int, int] = typer.Option(None, "--size", help="MR grid shape X Y Z; "
                                              "alone it keeps the region's field of view and "
                                              "sets the voxel size to fit (default: field of "
                                              "view / spacing)."),
    spacing: tuple[float, float, float] = typer.Option(
        None, "--spacing", help="MR voxel size X Y Z in mm (default: field of view / --size, "
                                "else drawn per subject)."),
    contrast: str = typer.Option("t1", "--contrast", help="t1, t2 or both (mr.nii.gz is T1w "
                                                          "unless t2)."),
    misalign_deg: float = typer.Option(10.0, "--misalign-deg",
                                       help="Largest MR rotation relative to the CT (deg)."),
    misalign_mm: float = typer.Option(10.0, "--misalign-mm",
                                      help="Largest MR translation relative to the CT (mm)."),
    flip: bool = typer.Option(False, "--flip", help="Also turn the MR 180 degrees about the "
                                                     "L-R or A-P axis."),
    fmt: str = typer.Option("nifti", "--format", help="nifti or dicom (MR and CT series)."),
    workers: int = typer.Option(1, "--workers", help="Processes generating subjects."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    no_ct_on_mr: bool = typer.Option(False, "--no-ct-on-mr",
                                     help="Skip ct_on_mr.nii.gz (CT on the MR grid)."),
    preview: Path = typer.Option(  # noqa: B008
        None, "--preview", help="Also write a PNG of the first subject (MR | CT, three planes)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress (a bar on a "
                               "terminal, one line per subject otherwise)."),
    labels: Path = typer.Option(  # noqa: B008
        None, "--labels", help="Real anatomy: a label map (NIfTI/MHA/NRRD) or a folder of them; "
                               "subjects (ids head-000...) are simulated from them."),
    label_scheme: str = typer.Option("synthseg", "--label-scheme",
                                     help="With --labels: synthseg, freesurfer, brainweb or a "
                                          "YAML file mapping label values to tissue classes."),
    split: str = typer.Option("all", "--split", help="With --labels: all, train (all but the "
                                                     "last 20 %% of the maps by name) or "
                                                     "held-out (that last 20 %%)."),
    mr_mode: str = typer.Option("realistic", "--mr-mode",
                                help="With --labels: realistic (signal equations; --contrast "
                                     "t1, t2, pd, flair, both or all) or random (a random "
                                     "contrast per subject)."),
    no_lr_flip: bool = typer.Option(False, "--no-lr-flip", help="With --labels: never mirror "
                                                                "left-right (default: p=1/2)."),
    deformation_mm: float = typer.Option(2.0, "--deformation-mm",
                                         help="With --labels: RMS of the smooth random "
                                              "deformation per axis (mm; 0: affine only)."),
) -> None:
    """Generate paired MR/CT phantoms with known transform, labels and tissue values.

    With --labels, subjects are simulated from real anatomical label maps (ids head-000...;
    see docs/real-anatomy.md): subject i uses map i mod N of the --split, with its own random
    affine, deformation, left-right flip, field of view, CT and MR; labels.nii.gz then holds
    tissue classes and labels_source.nii.gz the map's own labels.

    Writes DIR/<id>/ (ids like brain-000): mr.nii.gz (T1w unless --contrast t2; with both
    also mr_t1 and mr_t2), ct.nii.gz (own grid), ct_on_mr.nii.gz (CT on the MR grid through
    the true transform), mask.nii.gz and labels.nii.gz (MR grid), labels_ct.nii.gz (CT grid),
    truth.json (x_ct = mr_to_ct @ x_mr, RAS mm); and DIR/cohort.csv (id,mr,ct,mask,truth).
    """
    size = tuple(size) if size and None not in size else None
    spacing = tuple(spacing) if spacing and None not in spacing else None
    _check({"subjects": subjects, "region": region, "contrast": contrast, "fmt": fmt,
            "size": size, "spacing": spacing, "misalign_deg": misalign_deg,
            "misalign_mm": misalign_mm, "workers": workers, "labels": labels,
            "mr_mode": mr_mode, "split": split, "deformation_mm": deformation_mm})
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from medxlate.io.atomic import check_writable
    from medxlate.phantom.cohort import generate_cohort, plan_outputs
    from medxlate.phantom.subject import PhantomConfig, check_config

    if labels is not None:
        from medxlate.phantom.label_subject import LabelPhantomConfig, check_label_config

        config = LabelPhantomConfig(labels=labels, label_scheme=label_scheme, split=split,
                                    mr_mode=mr_mode, contrasts=LABEL_CONTRASTS[contrast],
                                    size=size, spacing=spacing, misalign_deg=misalign_deg,
                                    misalign_mm=misalign_mm, lr_flip=not no_lr_flip,
                                    deformation_mm=deformation_mm, ct_on_mr=not no_ct_on_mr)
        check_label_config(config)
        region = config.region
    else:
        config = PhantomConfig(region=region, size=size, spacing=spacing,
                               contrasts=CONTRASTS[contrast], misalign_deg=misalign_deg,
                               misalign_mm=misalign_mm, flip=flip, ct_on_mr=not no_ct_on_mr)
        check_config(config)
    plan_outputs(out, subjects, region, overwrite)
    if preview is not None:
        check_writable(preview, overwrite)
    console = Console(stderr=True)
    if quiet or not console.is_terminal:  # a log file gets plain lines, no cursor escapes
        done = []

        def line(sid: str) -> None:
            done.append(sid)
            if not quiet:
                print(f"[{len(done)}/{subjects}] {sid}: written", file=sys.stderr, flush=True)

        rows = generate_cohort(out, subjects, config, seed, fmt=fmt, workers=workers,
                               overwrite=overwrite, on_done=line)
    else:
        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                      transient=True) as progress:
            task = progress.add_task(f"phantom {region}", total=subjects)
            rows = generate_cohort(out, subjects, config, seed, fmt=fmt, workers=workers,
                                   overwrite=overwrite, on_done=lambda _: progress.advance(task))
    if preview is not None:
        from medxlate.phantom.preview import preview_folder

        preview_folder(out / rows[0]["id"], preview, overwrite=overwrite)
    typer.echo(f"wrote {len(rows)} {region} subject(s) and {out / 'cohort.csv'}")


def register(app: typer.Typer) -> None:
    add_command(app, "phantom", phantom)
