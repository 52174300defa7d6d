"""Cohort summary and the JSON, CSV and Markdown reports (all written atomically)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from medxlate.io.atomic import atomic_path

#: Columns shown first, in this order; per-label MAE columns follow.
MAIN_METRICS = ("mae", "me", "psnr", "ssim", "ms_ssim", "nmse", "mae_air", "mae_soft_tissue",
                "mae_bone")


#: Dose figures (evaluate --dose), after the image metrics; range_shift_beam_<k> follow.
DOSE_METRICS = ("dose_mae_body", "dose_mae_high", "gamma_2_2", "gamma_1_1", "target_d98_diff",
                "target_d95_diff", "target_d2_diff", "target_mean_diff", "range_shift_abs_max")


def _numbered(present: set[str], prefix: str) -> list[str]:
    return sorted((k for k in present if k.startswith(prefix)),
                  key=lambda k: int(k.rsplit("_", 1)[1]))


def metric_names(records: list[dict]) -> list[str]:
    """Metrics present in any record: main ones, labels in numeric order, then dose figures."""
    present = {k for r in records for k in r["metrics"]}
    names = [m for m in MAIN_METRICS if m in present]
    dose = [m for m in DOSE_METRICS if m in present]
    return (names + _numbered(present, "mae_label_") + dose
            + _numbered(present, "range_shift_beam_"))


def summarize(records: list[dict]) -> dict[str, dict[str, float | int | None]]:
    """Per metric over finite subject values: n, mean, std (ddof=1), median, q1, q3, iqr, min, max."""
    out = {}
    for name in metric_names(records):
        values = np.array([r["metrics"].get(name, math.nan) for r in records], dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            out[name] = {"n": 0}
            continue
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        out[name] = {
            "n": int(values.size),
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            "median": float(median), "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1),
            "min": float(values.min()), "max": float(values.max()),
        }
    return out


def _jsonable(value):
    """NaN/inf are not JSON: NaN -> null, +-inf -> "inf"/"-inf"."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def write_text(path: Path, text: str, overwrite: bool) -> None:
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(text)


def write_json(report: dict, path: Path, overwrite: bool = False) -> None:
    write_text(path, json.dumps(_jsonable(report), indent=2, allow_nan=False) + "\n", overwrite)


def _fmt(value, name: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if name in ("ssim", "ms_ssim") or name.startswith(("dose_mae", "target_d")):
        return f"{value:.4f}"
    if name == "nmse":
        return f"{value:.5f}"
    return f"{value:.2f}"


def csv_text(records: list[dict]) -> str:
    """One row per subject: id then every metric at full precision (empty = not computable)."""
    names = metric_names(records)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", *names])
    for r in records:
        row = [r["id"]]
        for name in names:
            v = r["metrics"].get(name, math.nan)
            row.append("" if math.isnan(v) else ("inf" if math.isinf(v) else repr(float(v))))
        writer.writerow(row)
    return buf.getvalue()


def markdown_text(records: list[dict], summary: dict, title: str = "medxlate evaluate") -> str:
    """A table per subject plus mean ± std and median [IQR] rows, ready for a paper or PR."""
    names = metric_names(records)
    head = "| id | " + " | ".join(names) + " |"
    rule = "|---|" + "---:|" * len(names)
    lines = [f"### {title}", "", head, rule]
    for r in records:
        cells = [_fmt(r["metrics"].get(n), n) for n in names]
        lines.append(f"| {r['id']} | " + " | ".join(cells) + " |")
    mean_cells, median_cells = [], []
    for n in names:
        s = summary.get(n, {})
        if not s.get("n"):
            mean_cells.append("")
            median_cells.append("")
            continue
        mean_cells.append(f"{_fmt(s['mean'], n)} ± {_fmt(s['std'], n)}")
        median_cells.append(f"{_fmt(s['median'], n)} [{_fmt(s['q1'], n)}, {_fmt(s['q3'], n)}]")
    lines.append("| **mean ± std** | " + " | ".join(mean_cells) + " |")
    lines.append("| **median [Q1, Q3]** | " + " | ".join(median_cells) + " |")
    return "\n".join(lines) + "\n"
