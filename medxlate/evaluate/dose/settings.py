"""What a dose evaluation plans: modality, prescription, target, beams, grids, calibration.

Example:
    >>> parse_prescription("60 Gy / 30 fx")
    (60.0, 30)
    >>> parse_target("sphere:0,10,-5,15")
    {'kind': 'sphere', 'center_mm': (0.0, 10.0, -5.0), 'radius_mm': 15.0}
    >>> parse_target("label:6")
    {'kind': 'label', 'label': 6}
    >>> parse_target("plan/RS.dcm:PTV 60")
    {'kind': 'rtstruct', 'path': PosixPath('plan/RS.dcm'), 'roi': 'PTV 60'}
    >>> parse_beams("0,72,144,216,288")
    (0.0, 72.0, 144.0, 216.0, 288.0)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from medxlate.errors import UsageError

#: Default gantry angles (degrees, IEC as in matRad): 5 equispaced coplanar photon fields,
#: 2 opposed lateral proton fields.
DEFAULT_BEAMS = {"photon": (0.0, 72.0, 144.0, 216.0, 288.0), "proton": (90.0, 270.0)}
DEFAULT_PRESCRIPTION = (60.0, 30)


@dataclass
class DoseSettings:
    """Options of a dose evaluation (one per run; every subject gets the same plan recipe).

    Attributes:
        mode: "photon" or "proton" (pyRadPlan's generic machines).
        prescription_gy: total prescribed dose (Gy); the plan is normalised so that the
            target's median dose (D50) equals it.
        fractions: number of fractions (recorded; doses are total doses).
        target: a mask file, ``{"kind": "sphere", "center_mm", "radius_mm"}`` (RAS mm),
            ``{"kind": "label", "label"}`` (a label of the subject's label map) or
            ``{"kind": "rtstruct", "path", "roi"}`` (an ROI of a DICOM RTSTRUCT).
        beams: gantry angles in degrees (coplanar, couch 0).
        dose_grid_mm: isotropic dose-grid spacing of the engine (coarse for speed).
        ct_grid_mm: isotropic spacing the CTs are resampled to for the engine (only when the
            reference is finer).
        bixel_width_mm: beamlet / spot spacing.
        calibration: CSV of HU -> relative electron density (photons) or stopping power ratio
            (protons); None: matRad's default table (calibration.DEFAULT_TABLE).
        out_dir: folder for dose NIfTI files, and RTDOSE files when the reference CT came
            from DICOM (None: not written).
    """

    mode: str = "photon"
    prescription_gy: float = DEFAULT_PRESCRIPTION[0]
    fractions: int = DEFAULT_PRESCRIPTION[1]
    target: dict | Path | None = None
    beams: tuple[float, ...] = ()
    dose_grid_mm: float = 4.0
    ct_grid_mm: float = 2.0
    bixel_width_mm: float = 5.0
    calibration: Path | None = None
    out_dir: Path | None = None
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.beams:
            self.beams = DEFAULT_BEAMS.get(self.mode, ())


def parse_prescription(text: str) -> tuple[float, int]:
    """"60Gy/30fx" -> (60.0, 30); UsageError otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*gy\s*(?:/\s*(\d+)\s*(?:fx|fractions?)?)?\s*",
                     text, re.IGNORECASE)
    if not m or float(m.group(1)) <= 0 or (m.group(2) and int(m.group(2)) < 1):
        raise UsageError(f"--prescription {text!r}: expected TOTAL Gy/FRACTIONS fx, e.g. "
                         "\"60Gy/30fx\"")
    return float(m.group(1)), int(m.group(2) or 1)


def parse_target(text: str) -> dict | Path:
    """``sphere:X,Y,Z,R`` (RAS mm), ``label:K``, ``RTSTRUCT:ROI`` or a mask file path.

    ``RTSTRUCT:ROI`` is a DICOM RTSTRUCT file (or, for a cohort, a folder of ``<id>.dcm``)
    and the name of one of its ROIs. A text that names an existing file or folder as a whole
    is a mask; otherwise it is split at the first colon whose left part exists (so ROI names
    may hold colons), else at the last one.
    """
    low = text.strip().lower()
    if low.startswith("sphere:"):
        parts = low[7:].split(",")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 4 or values[3] <= 0:
            raise UsageError(f"--target {text!r}: expected sphere:X,Y,Z,RADIUS in RAS mm with "
                             "RADIUS > 0")
        return {"kind": "sphere", "center_mm": tuple(values[:3]), "radius_mm": values[3]}
    if low.startswith("label:"):
        if not low[6:].strip().isdigit() or int(low[6:]) < 1:
            raise UsageError(f"--target {text!r}: expected label:K with K a label value >= 1")
        return {"kind": "label", "label": int(low[6:])}
    images = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr")
    if ":" in text and not Path(text).exists() and not low.endswith(images):
        # RTSTRUCT:ROI (a mask path with a colon in it stays a mask path)
        cuts = [i for i, ch in enumerate(text) if ch == ":"]
        cut = next((i for i in cuts if Path(text[:i]).exists()), cuts[-1])
        path, roi = text[:cut], text[cut + 1:].strip()
        if not path or not roi:
            raise UsageError(f"--target {text!r}: expected RTSTRUCT:ROI_NAME, e.g. "
                             "\"RS.dcm:PTV\"")
        return {"kind": "rtstruct", "path": Path(path), "roi": roi}
    return Path(text)


def parse_beams(text: str) -> tuple[float, ...]:
    """Comma-separated gantry angles in degrees."""
    try:
        angles = tuple(float(a) for a in text.split(",") if a.strip())
    except ValueError:
        angles = ()
    if not angles or any(not 0 <= a < 360 for a in angles) or len(set(angles)) != len(angles):
        raise UsageError(f"--beams {text!r}: expected distinct gantry angles in [0, 360) "
                         "degrees, e.g. \"0,72,144,216,288\"")
    return angles


def check_settings(s: DoseSettings) -> None:
    """UsageError for values the engine cannot use."""
    if s.mode not in DEFAULT_BEAMS:
        raise UsageError(f"--dose must be photon or proton, got {s.mode!r}")
    for name, value, low, high in (("--dose-grid", s.dose_grid_mm, 1.0, 10.0),
                                   ("--dose-ct-grid", s.ct_grid_mm, 0.5, 10.0)):
        if not low <= value <= high:
            raise UsageError(f"{name} must be between {low:g} and {high:g} mm (got {value:g})")
    if s.target is None:
        raise UsageError("--dose needs a target: --target MASK (a mask on the reference grid), "
                         "--target RTSTRUCT:ROI, --target sphere:X,Y,Z,R (RAS mm) or "
                         "--target label:K")
