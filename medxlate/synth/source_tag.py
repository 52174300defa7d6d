"""The cheap input check: does an input's contrast tag match what the model was trained on?

Tags only, no intensities (those are the guard's, issue 24). The *trained* contrast of a
checkpoint is, in order: the named contrast of its translation (config ``source``: "t1",
"t2"...); the contrasts its ``data["inputs"]`` record lists; for shipped weights, the
``source_contrast`` of their weights/manifest.json entry (the shipped demos were trained on
T1w phantoms but record the generic "mr"). An input's *tag* is the run's ``--source`` when it
names a contrast, else the case's own: the image a subject layout or cohort CSV names
(``mr_t2``, ``flair``...) or a BIDS suffix of the file name (``sub-01_T2w.nii.gz``).

A mismatch is a finding in the guard's form (``{"check", "message", "value", "limit"}``):
``synthesize`` prints one warning line (for ``--source``, once, before any case) and records
it in ``--report``; with ``--strict-inputs`` the input fails with
:class:`~medxlate.errors.UnfamiliarInputError` (exit 7) and the rest of a cohort goes on.

Example:
    >>> tag_of_path(Path("sub-01_ses-1_T2w.nii.gz")), tag_of_path(Path("s1/mr_flair.mha"))
    ('t2', 'flair')
    >>> contrast_finding("t2", ("t1",), "--source t2", "syndiff")["message"]
    '--source t2: syndiff was trained on T1 inputs, not T2'
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from medxlate.errors import UnfamiliarInputError

#: Named MR contrasts (as medxlate.models.registry.MR_CONTRASTS; repeated to stay torch-free
#: and below the registry).
CONTRASTS = ("t1", "t1ce", "t2", "flair", "pd")
#: BIDS anatomical suffixes (and common spellings) -> contrast tag.
SUFFIXES = {"t1w": "t1", "t1": "t1", "t1ce": "t1ce", "t1c": "t1ce", "t1gd": "t1ce",
            "t2w": "t2", "t2": "t2", "pdw": "pd", "pd": "pd", "flair": "flair"}
_STEM = re.compile(r"(?:^|[_\-.])(t1w|t1ce|t1gd|t1c|t1|t2w|t2|pdw|pd|flair)$")
_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr", ".zip")


def trained_contrasts(model) -> tuple[str, ...]:
    """The named MR contrasts ``model`` (a LoadedModel) was trained on; () when unstated."""
    try:
        source = model.translations()[0][0]
    except (AttributeError, IndexError, TypeError):
        source = (model.config or {}).get("source")
    if source in CONTRASTS:
        return (source,)
    data = getattr(model.meta, "data", None) or {}
    recorded = [c for c in (data.get("inputs") or {}).get("contrasts", []) if c in CONTRASTS]
    if recorded:
        return tuple(recorded)
    return shipped_contrast(getattr(model, "weights", None), getattr(model, "sha256", None))


def shipped_contrast(path, sha256: str | None) -> tuple[str, ...]:
    """The manifest's ``source_contrast`` of shipped weights at ``path`` (matched by name and
    sha256, so a user's file of the same name does not inherit it)."""
    from medxlate.weights.shipped import manifest

    if path is None or sha256 is None:
        return ()
    try:
        entry = manifest(Path(path).parent)["files"].get(Path(path).name) or {}
    except Exception:  # noqa: BLE001 - an unreadable manifest records nothing
        return ()
    tag = entry.get("source_contrast")
    return (tag,) if entry.get("sha256") == sha256 and tag in CONTRASTS else ()


def tag_of_path(path: Path | None) -> str | None:
    """The contrast a file or folder name states: ``mr_t2``, ``t1``, ``..._T2w``, ``FLAIR``."""
    if path is None:
        return None
    name = Path(path).name.lower()
    for suffix in _IMAGE_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    found = _STEM.search(name)
    return SUFFIXES[found.group(1)] if found else None


def contrast_finding(given: str | None, trained: tuple[str, ...], where: str,
                     model_name: str = "the model") -> dict[str, Any] | None:
    """The finding when tag ``given`` is not among ``trained`` (None when either is unknown
    or they agree)."""
    if given not in CONTRASTS or not trained or given in trained:
        return None
    return {"check": "source_tag",
            "message": f"{where}: {model_name} was trained on "
                       f"{'/'.join(t.upper() for t in trained)} inputs, not {given.upper()}",
            "value": given, "limit": list(trained)}


def run_finding(model, source: str | None) -> dict[str, Any] | None:
    """The finding of the run's ``--source`` tag (checked once, before any case)."""
    return contrast_finding(source, trained_contrasts(model), f"--source {source}",
                            model.spec.name)


def case_finding(model, source_path: Path | None, run_source: str | None
                 ) -> dict[str, Any] | None:
    """The finding of one input's own tag, when the run's ``--source`` names no contrast
    (a named ``--source`` is the run's finding, said once)."""
    if run_source in CONTRASTS:
        return None
    tag = tag_of_path(source_path)
    return contrast_finding(tag, trained_contrasts(model), f"{source_path} is named {tag}",
                            model.spec.name)


def warning_line(finding: dict[str, Any]) -> str:
    """The one warning line of a finding."""
    return f"medxlate: warning: {finding['message']}"


def refuse(finding: dict[str, Any], name: str) -> UnfamiliarInputError:
    """The --strict-inputs error for input ``name`` (exit 7), carrying its finding."""
    error = UnfamiliarInputError(f"{name}: {finding['message']} (--strict-inputs)")
    error.findings = [finding]
    return error
