"""The ``dose`` key of a bench spec: checked into a JSON-able record, and that record as
evaluate's DoseSettings (torch-free; bench.dose runs it).

Example:
    >>> from pathlib import Path
    >>> from medxlate.bench.spec import _Where
    >>> rec = parse_dose(_Where(Path("b.yaml")), {"modality": "photon",
    ...                  "prescription": "60Gy/30fx", "target": "label:10"}, Path("."))
    >>> rec["target"], rec["beams"], rec["references"]
    ('label:10', [0.0, 72.0, 144.0, 216.0, 288.0], True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medxlate.errors import MedxlateError, UsageError

KEYS = {"modality", "prescription", "target", "beams", "dose_grid", "ct_grid", "calibration",
        "references"}


def parse_dose(where, raw: Any, base: Path) -> dict[str, Any]:
    """The spec's ``dose`` mapping, checked, as a JSON-able record (paths made absolute)."""
    from medxlate.evaluate.dose.settings import (
        check_settings,
        parse_beams,
        parse_prescription,
        parse_target,
    )

    if not isinstance(raw, dict):
        raise where.fail("dose", "expected a mapping with modality, prescription and target")
    extra = sorted(set(raw) - KEYS)
    if extra:
        raise where.fail("dose", f"unknown key {extra[0]!r} (allowed: {', '.join(sorted(KEYS))})")
    try:
        total, fractions = parse_prescription(str(raw.get("prescription", "60Gy/30fx")))
        text = str(raw.get("target", "")).strip()
        if not text:
            raise UsageError("missing: sphere:X,Y,Z,R, label:K, a folder of <id>.nii.gz masks, "
                             "or a folder of <id>.dcm RTSTRUCTs and an ROI (FOLDER:ROI)")
        if not text.lower().startswith(("sphere:", "label:")) and not Path(text).is_absolute():
            text = str(base / text)                 # relative to the spec file
        beams = raw.get("beams")
        if isinstance(beams, list):
            beams = ",".join(str(b) for b in beams)
        record = {"modality": str(raw.get("modality", "photon")).lower(),
                  "prescription_gy": total, "fractions": fractions,
                  "target": text, "beams": list(parse_beams(beams)) if beams else [],
                  "dose_grid_mm": raw.get("dose_grid", 4.0),
                  "ct_grid_mm": raw.get("ct_grid", 2.0), "calibration": None,
                  "references": raw.get("references", True)}
        for key in ("dose_grid_mm", "ct_grid_mm"):
            value = record[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise UsageError(f"{key[:-3]}: expected a number of mm, got {value!r}")
            record[key] = float(value)
        if not isinstance(record["references"], bool):
            raise UsageError(f"references: expected true or false, got {record['references']!r}")
        if raw.get("calibration"):
            from medxlate.evaluate.dose.calibration import read_table

            cal = Path(str(raw["calibration"])).expanduser()
            record["calibration"] = str(cal if cal.is_absolute() else base / cal)
            read_table(Path(record["calibration"]))
        settings = to_settings(record)
        parse_target(text)
        check_settings(settings)
        record["beams"] = list(settings.beams)
    except MedxlateError as exc:
        message = str(exc).replace("--dose-grid", "dose_grid").replace("--dose-ct-grid",
                                                                      "ct_grid")
        raise where.fail("dose", message) from None
    return record


def to_settings(record: dict[str, Any]):
    """The evaluate DoseSettings of a spec record (no files written)."""
    from medxlate.evaluate.dose.settings import DoseSettings, parse_target

    return DoseSettings(mode=record["modality"], prescription_gy=record["prescription_gy"],
                        fractions=record["fractions"], target=parse_target(record["target"]),
                        beams=tuple(record["beams"]), dose_grid_mm=record["dose_grid_mm"],
                        ct_grid_mm=record["ct_grid_mm"],
                        calibration=Path(record["calibration"]) if record["calibration"]
                        else None)
