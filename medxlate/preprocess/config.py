"""Preprocessing configuration: region defaults, config files and ``--set key=value``.

A configuration is a plain JSON-serialisable dict. :func:`build_config` starts from the
common defaults, applies the region's defaults, then a YAML/JSON file, then ``--set``
overrides (dotted keys, values parsed as YAML scalars/lists). Unknown keys are refused so a
typo never silently does nothing.

Example:
    >>> cfg = build_config("pelvis", overrides=["steps.register.transform=affine"])
    >>> cfg["steps"]["resample"]["spacing_mm"], cfg["steps"]["register"]["transform"]
    ([1.0, 1.0, 2.5], 'affine')
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

from medxlate.errors import UsageError
from medxlate.intensity import DEFAULT_NORMALISATION, modality_spec

#: The steps in the fixed order they run (``read`` always runs; the others can be switched off
#: with ``steps.<name>.enabled=false``, except ``normalise``, which shards need).
STEP_ORDER = ("read", "bias_correction", "register", "resample", "mask", "crop", "normalise",
              "slices", "contours", "volumes")

DEFAULTS: dict[str, Any] = {
    "region": "brain",
    "split": {"seed": 0, "fractions": [0.8, 0.1, 0.1]},
    # Registration checks (medxlate.preprocess.qc): warn and flag, never change the outputs.
    "qc": {"max_tre_mm": 5.0},
    "normalisation": copy.deepcopy(DEFAULT_NORMALISATION),
    "steps": {
        "read": {"min_spacing_mm": 0.05, "max_spacing_mm": 20.0, "min_size": 4},
        "bias_correction": {"enabled": False, "shrink": 4, "iterations": [50, 50, 30, 20],
                            "convergence": 1e-6},
        "register": {
            "enabled": True,
            "transform": "rigid",            # rigid | affine | bspline (bspline = rigid, then B-spline)
            "init": "geometry",              # geometry (image centres) | mask (body centroids)
            "seed": 0,                       # seeds the random metric sampling
            "init_search": True,             # try the 24 axis-aligned rotations, keep the best
            "search_spacing_mm": 6.0,        # isotropic grid of the search
            "search_samples": 5000,
            "search_iterations": 30,
            "shrink_factors": [8, 4, 2, 1],
            "smoothing_mm": [6.0, 3.0, 1.5, 0.0],
            "bins": 32,
            "samples": 40000,                # Mattes MI samples per level (random, seeded)
            "grid_mm": 1.0,                  # MR resampled to isotropic max(grid_mm, finest spacing)
            "iterations": 100,               # per pyramid level
            "learning_rate": 1.0,            # mm of physical shift per step (rigid/affine)
            "min_step": 0.001,
            "bspline_grid_mm": 50.0,
            "bspline_iterations": 30,
            "bspline_learning_rate": 0.5,    # mm per step
            "bspline_shrink_factors": [4, 2],
            "bspline_smoothing_mm": [3.0, 1.5],
        },
        "resample": {"enabled": True, "spacing_mm": [1.0, 1.0, 1.0]},
        "mask": {
            "enabled": True,
            "source": "mr",                  # mr | ct | union | intersection (paired data)
            "mr": {}, "ct": {},              # overrides of medxlate.preprocess.mask.MASK_DEFAULTS
            "min_ct_coverage": 0.1,          # fraction of the MR body the registered CT must cover
        },
        "crop": {"enabled": True, "margin_mm": 10.0},
        "normalise": {},
        "slices": {"enabled": True, "axis": 2, "size": [256, 256], "min_body_fraction": 0.02},
        "contours": {"enabled": True, "sigma": 1.5, "low_threshold": 0.1, "high_threshold": 0.2},
        # Fixed-size 3D training volumes (3D models), cut around the body's bounding box.
        "volumes": {"enabled": False, "size": [64, 64, 64]},
    },
}

REGION_DEFAULTS: dict[str, dict[str, Any]] = {
    "brain": {},
    "pelvis": {
        "steps": {
            "resample": {"spacing_mm": [1.0, 1.0, 2.5]},
            "register": {"smoothing_mm": [8.0, 4.0, 2.0, 0.0], "bspline_grid_mm": 80.0},
            "mask": {"mr": {"closing_mm": 6.0}, "ct": {"closing_mm": 6.0, "opening_mm": 3.0}},
            "crop": {"margin_mm": 15.0},
            "slices": {"size": [512, 384]},
        },
    },
}

#: Keys that change how a run is carried out but not what it produces (left out of hashes).
_NOT_HASHED = ("split", "qc")


def merge(base: dict, update: dict, path: str = "") -> dict:
    """Recursive merge of ``update`` into a copy of ``base``; unknown keys are refused.

    Under ``normalisation`` and ``steps.mask.mr/ct`` new keys are allowed (they are checked
    by :func:`validate`); a normalisation entry whose ``kind`` changes is replaced whole.
    """
    out = copy.deepcopy(base)
    free = path.startswith("normalisation") or path in ("steps.mask.mr", "steps.mask.ct")
    for key, value in update.items():
        where = f"{path}.{key}" if path else key
        if key not in out and not free:
            raise UsageError(f"unknown configuration key {where!r}")
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            replace = path == "normalisation" and value.get("kind", old.get("kind")) != old.get(
                "kind")
            out[key] = copy.deepcopy(value) if replace else merge(old, value, where)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_config_file(path: Path) -> dict:
    """A YAML or JSON mapping from ``path``."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--config {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UsageError(f"--config {path}: not valid YAML/JSON ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: expected a mapping at the top level")
    return data


def parse_override(item: str) -> dict:
    """``"steps.crop.margin_mm=5"`` -> ``{"steps": {"crop": {"margin_mm": 5}}}``."""
    import yaml

    if "=" not in item:
        raise UsageError(f"--set {item!r}: expected key=value")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise UsageError(f"--set {item!r}: cannot parse the value ({exc})") from exc
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise UsageError(f"--set {item!r}: empty key")
    out: dict = {}
    node = out
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def validate(cfg: dict) -> dict:
    """Check values that would otherwise fail deep inside a step."""
    steps = cfg["steps"]
    if cfg["region"] not in REGION_DEFAULTS:
        raise UsageError(f"region must be one of {', '.join(REGION_DEFAULTS)}")
    reg = steps["register"]
    if reg["transform"] not in ("rigid", "affine", "bspline"):
        raise UsageError("steps.register.transform must be rigid, affine or bspline")
    if reg["init"] not in ("geometry", "mask"):
        raise UsageError("steps.register.init must be geometry or mask")
    if len(reg["shrink_factors"]) != len(reg["smoothing_mm"]):
        raise UsageError("steps.register.shrink_factors and smoothing_mm need the same length")
    spacing = steps["resample"]["spacing_mm"]
    if len(spacing) != 3 or min(float(s) for s in spacing) <= 0:
        raise UsageError("steps.resample.spacing_mm must be three positive numbers")
    if steps["mask"]["source"] not in ("mr", "ct", "union", "intersection"):
        raise UsageError("steps.mask.source must be mr, ct, union or intersection")
    sl = steps["slices"]
    if sl["axis"] not in (0, 1, 2):
        raise UsageError("steps.slices.axis must be 0, 1 or 2")
    if len(sl["size"]) != 2 or min(int(s) for s in sl["size"]) < 8:
        raise UsageError("steps.slices.size must be two integers >= 8")
    vs = steps["volumes"]["size"]
    if len(vs) != 3 or min(int(s) for s in vs) < 8:
        raise UsageError("steps.volumes.size must be three integers >= 8")
    from medxlate.preprocess.mask import MASK_DEFAULTS

    for modality in ("CT", "MR"):
        unknown = set(steps["mask"][modality.lower()]) - set(MASK_DEFAULTS[modality])
        if unknown:
            raise UsageError(f"steps.mask.{modality.lower()}: unknown key(s) {sorted(unknown)} "
                             f"(known: {', '.join(MASK_DEFAULTS[modality])})")
        try:
            entry = modality_spec(cfg["normalisation"], modality)
        except ValueError as exc:
            raise UsageError(f"normalisation: {exc}") from exc
        for key in ("low", "high", "low_pct", "high_pct"):
            if key in entry:
                entry[key] = float(entry[key])
    fractions = cfg["split"]["fractions"]
    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
        raise UsageError("split.fractions must be three non-negative numbers (train, val, test)")
    return cfg


def build_config(region: str | None = None, config_file: Path | None = None,
                 overrides: list[str] | None = None) -> dict:
    """Defaults <- region defaults <- config file <- ``--set`` overrides, validated."""
    layers = []
    if config_file is not None:
        layers.append(read_config_file(config_file))
    layers += [parse_override(item) for item in overrides or []]
    chosen = region
    for layer in layers:  # the region may come from the file or --set
        chosen = layer.get("region", chosen) if region is None else region
    chosen = chosen or "brain"
    if chosen not in REGION_DEFAULTS:
        raise UsageError(f"--region {chosen!r}: expected one of {', '.join(REGION_DEFAULTS)}")
    cfg = merge(DEFAULTS, REGION_DEFAULTS[chosen])
    for layer in layers:
        cfg = merge(cfg, layer)
    cfg["region"] = chosen
    return validate(cfg)


def output_config(cfg: dict) -> dict:
    """The part of ``cfg`` that determines each subject's files (not the split)."""
    return {k: v for k, v in cfg.items() if k not in _NOT_HASHED}


def config_hash(cfg: dict, inputs: dict[str, str]) -> str:
    """sha256 over what determines a subject's output: the config and the input hashes."""
    blob = json.dumps({"config": output_config(cfg), "inputs": inputs}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()
