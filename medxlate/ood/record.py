"""The training record of a checkpoint (``data["inputs"]``) and how existing weights gain one.

A record is built from the guard summaries (:func:`medxlate.ood.summary.summarise`) of the
training inputs, raw as a user would pass them to ``synthesize``::

    {"guard": 1, "modality": "MR", "contrasts": ["t1"], "region": "brain",
     "working_spacing_mm": [2, 2, 2], "subjects": 24, "source": "<how they were made>",
     "input_spacing_mm": {"min": [...], "max": [...]},       # per axis, over subjects
     "body": {"volume_ml": [min, max], "extent_mm": {"min": [...], "max": [...]}},
     "quantiles": {"levels": [...], "mean": [...], "max_distance": d},
     "profile": {"shells_mm": [...], "mean": [...], "max_distance": d}}

``max_distance`` is the largest distance (:func:`medxlate.ood.check.distance`) of one
training input's summary from the mean: the spread the guard tolerates (times a margin).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from medxlate.errors import WeightsError
from medxlate.io.atomic import atomic_path
from medxlate.ood.check import distance
from medxlate.ood.summary import GUARD_SPACING_MM, LEVELS, SHELLS_MM

RECORD_VERSION = 1


def _spread(vectors: list[list[float | None]]) -> tuple[list[float | None], float]:
    arr = np.array([[np.nan if v is None else v for v in vec] for vec in vectors], float)
    with np.errstate(all="ignore"):
        mean = np.nanmean(arr, axis=0)
    mean_list = [None if not np.isfinite(m) else round(float(m), 4) for m in mean]
    far = max((distance(vec, mean_list) or 0.0) for vec in vectors)
    return mean_list, round(far, 4)


def build_record(summaries: list[dict[str, Any]], modality: str, contrasts: list[str],
                 region: str | None, working_spacing_mm, source: str) -> dict[str, Any]:
    """The record of a model trained on inputs described by ``summaries``.

    ``contrasts == ["any"]`` (a contrast-agnostic model) keeps grid and region but no
    intensity summary: no contrast lies outside it.
    """
    if not summaries:
        raise ValueError("a training record needs at least one summary")
    spacing = np.array([s["spacing_mm"] for s in summaries], float)
    bodies = [s["body"] for s in summaries if s.get("body")]
    record: dict[str, Any] = {
        "guard": RECORD_VERSION, "modality": modality, "contrasts": list(contrasts),
        "region": region, "subjects": len(summaries), "source": source,
        "guard_spacing_mm": list(GUARD_SPACING_MM),
        "working_spacing_mm": [float(s) for s in working_spacing_mm] if working_spacing_mm
        else None,
        "input_spacing_mm": {"min": spacing.min(0).round(4).tolist(),
                             "max": spacing.max(0).round(4).tolist()},
    }
    if bodies:
        vols = [b["volume_ml"] for b in bodies]
        ext = np.array([b["extent_mm"] for b in bodies], float)
        record["body"] = {"volume_ml": [round(min(vols), 1), round(max(vols), 1)],
                          "extent_mm": {"min": ext.min(0).tolist(), "max": ext.max(0).tolist()}}
    if contrasts != ["any"]:
        for key, axis_name, axis in (("quantiles", "levels", list(LEVELS)),
                                     ("profile", "shells_mm", [s if np.isfinite(s) else None
                                                               for s in SHELLS_MM])):
            vectors = [s[key] for s in summaries if s.get(key)]
            if vectors:
                mean, far = _spread(vectors)
                record[key] = {axis_name: axis, "mean": mean, "max_distance": far}
    return record


def _read_header(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    if len(raw) < 8:
        raise WeightsError(f"{path}: not a readable safetensors file (too short)")
    (n,) = struct.unpack("<Q", raw[:8])
    try:
        header = json.loads(raw[8:8 + n])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from exc
    return header, raw[8 + n:]


def set_data_inputs(path: Path | str, record: dict[str, Any]) -> None:
    """Write ``record`` as ``data["inputs"]`` of the checkpoint at ``path``, atomically,
    leaving every tensor byte (and so the stored tensor digest) as it was."""
    update_metadata_json(path, "data", lambda described: {**described, "inputs": record})


def update_metadata_json(path: Path | str, key: str, update) -> None:
    """Replace the JSON metadata entry ``key`` of the checkpoint at ``path`` by
    ``update(old value)``, atomically, leaving every tensor byte as it was.

    safetensors stores an 8-byte header length, a JSON header (tensor offsets relative to
    the end of the header, and ``__metadata__``) and the tensor data: only the header is
    rewritten, padded with spaces to a multiple of 8 bytes as safetensors pads it.
    """
    path = Path(path)
    header, data = _read_header(path)
    meta = dict(header.get("__metadata__") or {})
    try:
        described = json.loads(meta.get(key, "{}"))
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{path}: damaged checkpoint metadata ({exc})") from exc
    meta[key] = json.dumps(update(described), sort_keys=True)
    header["__metadata__"] = meta
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_bytes(struct.pack("<Q", len(text)) + text + data)


def _nums(values, unit: str = "") -> str:
    return " x ".join("-" if v is None else f"{v:.3g}" for v in values) + unit


def describe(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, text) rows of a record for `medxlate info --model`."""
    rows = [("input modality", str(record.get("modality"))),
            ("contrasts", ", ".join(record.get("contrasts") or []) or "-"),
            ("region", str(record.get("region"))),
            ("training inputs", f"{record.get('subjects')}: {record.get('source')}")]
    if record.get("working_spacing_mm"):
        rows.append(("working grid", _nums(record["working_spacing_mm"], " mm")))
    spacing = record.get("input_spacing_mm")
    if spacing:
        rows.append(("input voxels", f"{_nums(spacing['min'])} to {_nums(spacing['max'])} mm"))
    body = record.get("body")
    if body:
        low, high = body["volume_ml"]
        rows.append(("body volume", f"{low:.0f} - {high:.0f} mL"))
        rows.append(("body extent", f"{_nums(body['extent_mm']['min'])} to "
                                    f"{_nums(body['extent_mm']['max'])} mm"))
    q = record.get("quantiles")
    if q:
        rows.append(("normalised quantiles", "  ".join(
            f"{lv:g}: {m:.2f}" for lv, m in zip(q["levels"], q["mean"]))
            + f"  (spread {q['max_distance']:.2f})"))
    p = record.get("profile")
    if p:
        shells = p["shells_mm"]
        names = [f"{a:g}-{b:g}" if b is not None else f">{a:g}"
                 for a, b in zip(shells[:-1], shells[1:])]
        rows.append(("mean by depth (mm)", "  ".join(
            f"{n}: {'-' if m is None else f'{m:.2f}'}" for n, m in zip(names, p["mean"]))
            + f"  (spread {p['max_distance']:.2f})"))
    if record.get("contrasts") == ["any"]:
        rows.append(("intensities", "any MR contrast (trained with augment.profile="
                                    "any-contrast): no intensity check"))
    return rows
