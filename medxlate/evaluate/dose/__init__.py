"""Dose evaluation of a synthetic CT: plan on the reference CT, recompute on the synthetic one.

Behind the optional extra ``pip install "medxlate[dose]"``: the dose engine is pyRadPlan (the
Python reimplementation of matRad, with its generic photon and proton machines) and the gamma
index is pymedphys's. medxlate computes no dose itself; it builds the plan's inputs (CT on an
axis-aligned grid, target and body, beams), calls the engine, and scores the two doses
(docs/dose.md).

Example:
    >>> from medxlate.evaluate.dose.settings import parse_prescription
    >>> parse_prescription("60Gy/30fx")
    (60.0, 30)
"""

from __future__ import annotations

from medxlate.errors import UsageError

INSTALL_HINT = 'pip install "medxlate[dose]"'


def require_engine() -> None:
    """UsageError (one line) unless pyRadPlan and pymedphys import."""
    missing = []
    for module in ("pyRadPlan", "pymedphys"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise UsageError(f"--dose needs the dose extra ({', '.join(missing)} not installed): "
                         f"{INSTALL_HINT}")


def engine_available() -> bool:
    """True when the dose extra is installed (tests skip otherwise)."""
    try:
        require_engine()
    except UsageError:
        return False
    return True
