"""Bench outputs: each model row against its grid's floor and the intensity map, then
W/bench.json, W/bench.csv, W/bench.md and one PNG per direction (MAE against training
minutes)."""

from __future__ import annotations

import csv
import io
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medxlate.bench.records import clean, grid_label, write_json
from medxlate.bench.spec import DIRECTIONS
from medxlate.evaluate.anatomy import NAMES as ANATOMY
from medxlate.io.atomic import atomic_path

CSV_COLUMNS = ("direction", "contrast", "kind", "label", "model", "grid", "steps", "minutes",
               "device", "train_subjects", "sampler", "seconds_per_volume", "mae", "me", "psnr",
               "ssim", "bone_dice_300", "brain_over_300_pct", "air_mae", "above_floor",
               "vs_intensity_map", "subjects")


def floor_label(spacing) -> str:
    return f"floor-{grid_label(spacing).replace(' ', '')}"


def compare(spec, cohort, rows: list[dict], refs: list[dict], device: str) -> dict[str, Any]:
    """The bench result: rows with ``above_floor`` and ``vs_intensity_map`` (MAE differences;
    negative ``vs_intensity_map`` = better than the map)."""
    by = {(r["direction"], r.get("contrast"), r["label"]): r for r in refs}
    for row in rows:
        spacing = row["grid"]["spacing_mm"]
        group = (row["direction"], row.get("contrast"))
        floor = by.get((*group, floor_label(spacing)))
        imap = by.get((*group, "intensity-map"))
        mae = row["metrics"]["mae"]
        row["above_floor"] = mae - floor["metrics"]["mae"] if floor else None
        row["vs_intensity_map"] = mae - imap["metrics"]["mae"] if imap else None
    from medxlate import __version__

    if device == "auto":                   # say what auto meant on this machine
        import torch

        device = "auto (cuda)" if torch.cuda.is_available() else "auto (cpu)"

    return clean({"spec": spec.name, "spec_path": str(spec.path),
                  "description": spec.description, "cohort": cohort.description,
                  "test_subjects": list(dict.fromkeys(t.id for t in cohort.tests)),
                  "device": device,
                  "threads": os.environ.get("OMP_NUM_THREADS", "default"),
                  "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s)",
                  "medxlate": __version__,
                  "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "rows": rows, "references": refs})


def _unit(direction: str) -> str:
    return "HU" if DIRECTIONS[direction][1] == "ct" else "normalised"


def _num(value, direction: str, signed: bool = False) -> str:
    if value is None:
        return "-"
    digits = 1 if _unit(direction) == "HU" else 3
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _sampler(row: dict) -> str:
    s = row.get("sampler") or "-"
    return f"{s}-{row['sampler_steps']}" if row.get("sampler_steps") else s


def _budget(row: dict) -> str:
    b = row.get("budget") or {}
    if row["kind"] == "reference":
        return (f"fit on {b['voxels']} voxels of {b['train_subjects']} subjects"
                if b.get("voxels") else "none")
    phases = f" in {b['phases']} phases" if (b.get("phases") or 1) > 1 else ""
    parts = [f"{b['steps']} steps{phases}" if b.get("steps") is not None else None,
             f"{b['minutes']:.1f} min" if b.get("minutes") is not None else None,
             b.get("device"),
             f"{b['train_subjects']} train subjects" if b.get("train_subjects") else None]
    text = ", ".join(p for p in parts if p) or "unknown"
    return text + ("" if row.get("trained_here") else " (shipped)" if
                   row["entry"]["weights"] == "shipped" else " (given weights)")


def groups(result: dict) -> list[tuple[str, str | None]]:
    """(direction, contrast) of the tables, in the rows' order (contrast None: one MR)."""
    return list(dict.fromkeys((r["direction"], r.get("contrast")) for r in result["rows"]))


def group_title(direction: str, contrast: str | None) -> str:
    return direction if contrast is None else f"{direction}, {contrast.upper()}w MR"


def _anatomy(m: dict) -> str:
    """The anatomy cells: Dice > 300 HU, brain > 300 HU (%), MAE in air (HU)."""
    cells = [m.get("bone_dice_300"), m.get("brain_over_300_pct"), m.get("air_mae")]
    digits = (3, 2, 1)
    return "".join(f" {'-' if v is None else f'{v:.{d}f}'} |" for v, d in zip(cells, digits))


def markdown_table(result: dict, direction: str, contrast: str | None = None) -> str:
    """The table of one direction (and MR contrast): model rows, then the reference rows.
    Rows scored on label maps get three more columns (medxlate.evaluate.anatomy), and a spec
    with a dose key its dose columns (medxlate.bench.dose)."""
    from medxlate.bench.dose import header_cells, row_cells

    unit = _unit(direction)
    extra = header_cells(result)

    def cells(row: dict) -> str:      # the dose columns, when the spec has a dose key
        return "".join(f" {c} |" for c in row_cells(result, row))

    def mine(r: dict) -> bool:
        return r["direction"] == direction and r.get("contrast") == contrast

    rows = [r for r in result["rows"] if mine(r)]
    refs = [r for r in result["references"] if mine(r)]
    anatomy = any(k in r["metrics"] for r in rows + refs for k in ANATOMY)
    more = " Dice > 300 HU | brain > 300 HU (%) | MAE in air (HU) |" if anatomy else ""
    lines = [f"| row | grid | budget | sampler | s / volume | MAE ({unit}) | PSNR (dB) | SSIM "
             f"|{more} above floor | vs intensity map |" + "".join(f" {h} |" for h in extra),
             "|---|---|---|---|---|---|---|---|" + "---|" * (3 if anatomy else 0) + "---|---|"
             + "---|" * len(extra)]
    for r in rows:
        m = r["metrics"]
        psnr = "inf" if m["psnr"] is None else f"{m['psnr']:.2f}"
        lines.append(f"| {r['label']} | {grid_label(r['grid']['spacing_mm'])} | {_budget(r)} "
                     f"| {_sampler(r)} | {r['seconds_per_volume']:.1f} "
                     f"| {_num(m['mae'], direction)} | {psnr} | {m['ssim']:.3f} "
                     f"|{_anatomy(m) if anatomy else ''} "
                     f"{_num(r['above_floor'], direction, True)} "
                     f"| {_num(r['vs_intensity_map'], direction, True)} |" + cells(r))
    for r in refs:
        m = r["metrics"]
        psnr = "inf" if m["psnr"] is None else f"{m['psnr']:.2f}"
        grid = grid_label(r["grid"]["spacing_mm"]) if r["grid"]["spacing_mm"] else "input grid"
        lines.append(f"| reference: {r['label']} ({r['what']}) | {grid} | {_budget(r)} | - | - "
                     f"| {_num(m['mae'], direction)} | {psnr} | {m['ssim']:.3f} "
                     f"|{_anatomy(m) if anatomy else ''} - | - |" + cells(r))
    return "\n".join(lines)


def markdown(result: dict) -> str:
    out = [f"# bench: {result['spec']}", "", result["description"] or "", "",
           f"Cohort: {result['cohort']}. Held out: {', '.join(result['test_subjects'])}. "
           f"Means over the held-out subjects, scored by `medxlate evaluate` inside the body "
           f"mask; device {result['device']}, OMP_NUM_THREADS={result['threads']}, "
           f"{result['machine']}; {result['created']}.", ""]
    for direction, contrast in groups(result):
        out += [f"## {group_title(direction, contrast)}", "",
                markdown_table(result, direction, contrast), ""]
    if result.get("failed"):
        out += ["## Failed rows", "", *[f"- {f['label']}: {f['error']}" for f in result["failed"]],
                ""]
    out += ["`above floor`: MAE minus the spacing floor of the row's grid (the reference taken "
            "to that grid and back). `vs intensity map`: MAE minus the intensity map's "
            "(negative: better than any per-voxel lookup).", ""]
    if any(k in r["metrics"] for r in result["rows"] + result["references"] for k in ANATOMY):
        out += ["`Dice > 300 HU`: Dice of the > 300 HU regions (row vs reference CT) in the body "
                "mask. `brain > 300 HU`: % of the brain (label-map labels 2-60) the row puts "
                "above 300 HU. `MAE in air`: MAE where the reference CT is below -400 HU in the "
                "mask (sinuses, airways). Means over the subjects where the region is not "
                "empty.", ""]
    from medxlate.bench.dose import note

    if result.get("dose"):
        out += [note(result), ""]
    return "\n".join(out)


def csv_text(result: dict) -> str:
    buf = io.StringIO()
    from medxlate.bench.dose import COLUMNS, csv_cells

    dose = bool(result.get("dose"))
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS + (COLUMNS if dose else ()),
                            lineterminator="\n")
    writer.writeheader()
    for r in [*result["rows"], *result["references"]]:
        b, m = r.get("budget") or {}, r["metrics"]
        writer.writerow({"direction": r["direction"], "contrast": r.get("contrast") or "",
                         "kind": r["kind"], "label": r["label"],
                         "model": r.get("model", ""), "grid": grid_label(r["grid"]["spacing_mm"]),
                         "steps": b.get("steps", ""), "minutes": b.get("minutes", ""),
                         "device": b.get("device", ""), "train_subjects":
                         b.get("train_subjects", ""), "sampler": _sampler(r) if r["kind"] ==
                         "model" else "", "seconds_per_volume": r.get("seconds_per_volume", ""),
                         **{k: "" if m[k] is None else f"{m[k]:.6g}" for k in
                            ("mae", "me", "psnr", "ssim")},
                         **{k: "" if m.get(k) is None else f"{m[k]:.6g}" for k in ANATOMY},
                         "above_floor": "" if r.get("above_floor") is None else
                         f"{r['above_floor']:.6g}", "vs_intensity_map": "" if
                         r.get("vs_intensity_map") is None else f"{r['vs_intensity_map']:.6g}",
                         "subjects": len(r["subjects"]), **(csv_cells(r) if dose else {})})
    return buf.getvalue()


def plot(result: dict, direction: str, path: Path) -> None:
    """MAE against training minutes: a point per model, a line per reference row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    rows = [r for r in result["rows"] if r["direction"] == direction]
    for r in rows:
        minutes = r["budget"].get("minutes")
        if minutes is None:
            continue
        ax.scatter([minutes], [r["metrics"]["mae"]], zorder=3)
        name = r["label"] + (f" ({r['contrast']})" if r.get("contrast") else "")
        ax.annotate(name, (minutes, r["metrics"]["mae"]), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")
    styles = {"constant": ":", "intensity-map": "--"}
    for r in result["references"]:
        if r["direction"] == direction:
            ax.axhline(r["metrics"]["mae"], linestyle=styles.get(r["label"], "-."),
                       color="grey", linewidth=1)
            name = r["label"] + (f" ({r['contrast']})" if r.get("contrast") else "")
            ax.annotate(name, (0, r["metrics"]["mae"]), fontsize=7, color="grey",
                        xycoords=("axes fraction", "data"), xytext=(2, 2),
                        textcoords="offset points")
    ax.set_xlabel("training minutes (as recorded in each checkpoint)")
    ax.set_ylabel(f"MAE ({_unit(direction)}), held-out mean")
    ax.set_title(f"bench {result['spec']}: {direction}")
    minutes = [r["budget"].get("minutes") or 0.0 for r in rows]
    ax.set_xlim(0, max([*minutes, 0.1]) * 1.3)        # room for the labels
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        with atomic_path(path, overwrite=True) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)


def write_outputs(result: dict, workdir: Path) -> list[Path]:
    paths = [workdir / "bench.json", workdir / "bench.csv", workdir / "bench.md"]
    write_json(paths[0], result)
    for path, text in ((paths[1], csv_text(result)), (paths[2], markdown(result))):
        with atomic_path(path, overwrite=True) as tmp:
            tmp.write_text(text)
    for direction in dict.fromkeys(r["direction"] for r in result["rows"]):
        png = workdir / f"bench-{DIRECTIONS[direction][2]}.png"
        plot(result, direction, png)
        paths.append(png)
    return paths
