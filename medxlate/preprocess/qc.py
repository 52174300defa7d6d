"""Registration quality checks: flag a subject whose registration is doubtful.

Two signs, from the registration report (:func:`medxlate.preprocess.register.register`):

- the target registration error against a known truth (phantoms' truth.json) has a median
  above ``qc.max_tre_mm`` (default 5 mm, a few voxels of the 1-mm training grid);
- the final Mattes MI is not better (higher) than with the scanner geometry as it came
  (``mi_identity``): the optimiser did not improve the alignment at all.

A flagged subject is still written (the data may be fine, e.g. already aligned scans); the
warning is printed, stored in its record (``registration.warnings``) and shown in the summary.

Example:
    >>> registration_warnings({"mi_identity": 0.31, "mi_final": 0.30,
    ...                        "tre_mm": {"median": 56.2, "max": 97.0}}, 5.0)
    ['TRE median 56.2 mm (max 97 mm) exceeds 5 mm', 'final MI 0.3 is not better than the initial 0.31']
"""

from __future__ import annotations


def registration_warnings(report: dict, max_tre_mm: float) -> list[str]:
    """Human-readable problems of one registration report (empty: nothing to flag)."""
    problems = []
    tre = report.get("tre_mm")
    if tre and tre["median"] > max_tre_mm:
        problems.append(f"TRE median {tre['median']:.4g} mm (max {tre['max']:.4g} mm) exceeds "
                        f"{max_tre_mm:.4g} mm")
    before, after = report.get("mi_identity"), report.get("mi_final")
    if before is not None and after is not None and not after > before:
        problems.append(f"final MI {after:.4g} is not better than the initial {before:.4g}")
    return problems
