"""The phantoms of a bench cohort: procedural heads, or subjects simulated from real label maps.

A spec's ``cohort.phantom`` makes procedural phantoms (``medxlate phantom``) unless it names
``labels``: then the training subjects come from the ``--split train`` maps and the held-out
subjects from the ``--split held-out`` maps (``medxlate phantom --labels``), so no held-out
anatomy is ever seen in training. MR contrasts (``t1``, ``t2``) are rendered from the same
anatomy and CT; :func:`mr_file` picks one subject's MR of a contrast.

Example:
    >>> contrasts({"phantom": {"labels": "maps"}, "test": {"contrast": "both"}})
    ('t1', ('t1', 't2'))
    >>> contrasts({"phantom": {}, "test": {}})        # procedural, no contrast asked for
    (None, (None,))
"""

from __future__ import annotations

from pathlib import Path

from medxlate.errors import InputError

#: `contrast:` values of a spec -> the contrasts scored (as `medxlate phantom --contrast`).
TEST_CONTRASTS = {"t1": ("t1",), "t2": ("t2",), "both": ("t1", "t2")}
_RENDERED = {"t1": "t1w", "t2": "t2w"}    # the phantom generators' contrast names


def is_real_anatomy(ph: dict) -> bool:
    return ph.get("labels") is not None


def contrasts(cohort: dict) -> tuple[str | None, tuple[str | None, ...]]:
    """(training contrast, test contrasts) of a phantom cohort.

    ``None`` (a spec that names no contrast, procedural phantoms) keeps the single-contrast
    bench: ``mr.nii.gz`` (T1w) and the work folder's names of before contrasts existed.
    Real-anatomy cohorts default to T1w.
    """
    ph, test = cohort["phantom"], cohort["test"]
    default = "t1" if is_real_anatomy(ph) else None
    train = ph.get("contrast", default)
    tested = TEST_CONTRASTS[test["contrast"]] if "contrast" in test else (default,)
    if train is None and tested != (None,):
        train = "t1"
    return train, tested


def check_labels(ph: dict) -> None:
    """The label-map folder exists and holds maps (exit 3 otherwise), before anything is
    written."""
    from medxlate.phantom.labels import find_maps

    folder = Path(ph["labels"])
    if not folder.exists():
        raise InputError(f"cohort.phantom.labels {folder}: no such folder (a relative path is "
                         f"taken from the current directory, {Path.cwd()}; or give --labels)")
    try:
        find_maps(folder)
    except InputError as exc:
        raise InputError(f"cohort.phantom.labels: {str(exc).removeprefix('--labels ')}") from None


def make_config(ph: dict, split: str, wanted: tuple[str | None, ...], grid: dict):
    """The generator's config: ``split`` (train / held-out) for label maps; ``grid`` holds
    ``spacing`` / ``size`` (the training phantoms' or the held-out ones')."""
    rendered = tuple(dict.fromkeys(_RENDERED[c or "t1"] for c in wanted))
    size = tuple(grid["size"]) if grid.get("size") else None
    spacing = tuple(grid["spacing"]) if grid.get("spacing") else None
    if is_real_anatomy(ph):
        from medxlate.phantom.label_subject import LabelPhantomConfig, check_label_config

        config = LabelPhantomConfig(labels=Path(ph["labels"]),
                                    label_scheme=str(ph.get("scheme", "synthseg")),
                                    split=split, contrasts=rendered, size=size, spacing=spacing)
        check_label_config(config)
        return config
    from medxlate.phantom import PhantomConfig
    from medxlate.phantom.subject import check_config

    config = PhantomConfig(region=ph.get("region", "brain"), size=size, spacing=spacing,
                           contrasts=rendered)
    check_config(config)
    return config


def generate(folder: Path, config, seed: int, indices: list[int]) -> list[Path]:
    """Subject folders ``indices`` of ``seed`` under ``folder``; finished ones are kept."""
    from medxlate.phantom import make_subject, subject_id
    from medxlate.phantom.cohort import write_subject

    real = hasattr(config, "labels")
    if real:
        from medxlate.phantom.label_subject import make_label_subject
    out = []
    for index in indices:
        sub = folder / subject_id(config.region, index)
        if not (sub / "truth.json").is_file():     # write_subject is atomic: all or nothing
            make = make_label_subject if real else make_subject
            write_subject(make(config, seed, index), sub)
        out.append(sub)
    return out


def mr_file(subject: Path, contrast: str | None) -> Path:
    """The subject's MR of ``contrast`` (``mr_t2.nii.gz`` when several were rendered)."""
    if contrast is not None and (subject / f"mr_{contrast}.nii.gz").is_file():
        return subject / f"mr_{contrast}.nii.gz"
    return subject / "mr.nii.gz"


def map_names(ph: dict, split: str) -> list[str]:
    from medxlate.phantom.labels import find_maps, split_maps

    return [p.name.split(".")[0] for p in split_maps(find_maps(ph["labels"]), split)]
