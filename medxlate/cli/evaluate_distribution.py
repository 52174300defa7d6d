"""`medxlate evaluate --distribution`: printing and file output for set metrics (the
computation is medxlate.evaluate.distribution)."""

from __future__ import annotations

from pathlib import Path

LABELS = {"fid": "FID", "is": "IS", "is_std": "IS std", "fds": "FDS", "ds": "DS"}


def evaluate_distribution(pred: Path | None, ref: Path | None, modality: str, hu_range,
                          inception: Path | None, distribution: bool, gates, out, csv_path,
                          markdown, device: str, overwrite: bool, unused: list) -> None:
    """Check the options, run the metrics, print a table, write JSON/CSV/Markdown, gate.

    Raises:
        UsageError: missing --pred/--ref, per-subject options, a gate on another metric.
        ThresholdError: a --fail-if gate holds (exit 6).
    """
    from rich.console import Console
    from rich.table import Table

    from medxlate.errors import ThresholdError, UsageError
    from medxlate.evaluate.distribution import METRICS, csv_row, run_distribution
    from medxlate.evaluate.gates import check_metrics, failures
    from medxlate.evaluate.report import write_json, write_text
    from medxlate.io.atomic import check_writable
    from medxlate.io.guard import Output, refuse_overlaps

    if not distribution:
        raise UsageError("--inception applies to --distribution")
    if pred is None or ref is None:
        raise UsageError("--distribution needs --pred GENERATED_DIR and --ref DATASET_OR_DIR")
    if any(u is not None for u in unused):
        raise UsageError("--mask/--labels/--source/--pairs/--plots are per-subject options; "
                         "--distribution compares two sets")
    known = [m for m in METRICS if inception is not None or m in ("fds", "ds")]
    if any(g.metric in ("fid", "is", "is_std") for g in gates) and inception is None:
        raise UsageError("--fail-if on fid/is needs --inception PATH (Inception-v3 weights)")
    check_metrics(gates, known)
    files = {"--out": out, "--csv": csv_path, "--markdown": markdown}
    refuse_overlaps(images=[pred, ref], others=[inception],
                    outputs=[Output(k, v) for k, v in files.items() if v is not None])
    for path in files.values():
        if path is not None:
            check_writable(path, overwrite)
    report = run_distribution(pred, ref, modality, tuple(hu_range), inception,
                              device="cuda" if device == "cuda" else "cpu")
    metrics = report["metrics"]
    fails = failures([{"id": "generated", "metrics": metrics}], gates)
    report["gates"] = {"expressions": [str(g) for g in gates], "failures": fails}
    names = [m for m in METRICS if m in metrics]
    if out is not None:
        write_json(report, out, overwrite)
    if csv_path is not None:
        write_text(csv_path, csv_row(report), overwrite)
    if markdown is not None:
        head = "| " + " | ".join(LABELS[n] for n in names) + " |\n"
        rule = "|" + "---|" * len(names) + "\n"
        write_text(markdown, head + rule + "| " + " | ".join(f"{metrics[n]:.4g}" for n in names)
                   + " |\n", overwrite)
    table = Table(min_width=72,
                  title=f"medxlate evaluate --distribution ({report['generated']['slices']} "
                        f"generated vs {report['reference']['slices']} real slices)")
    for n in names:
        table.add_column(LABELS[n], justify="right")
    table.add_row(*[f"{metrics[n]:.4g}" for n in names])
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)
    matched = report["reference"]["matched_to_generated"]
    if matched != "none":
        how = "cut into seeded random crops of" if matched == "random_crop" else "resized to"
        Console(stderr=True).print(f"note: real slices {how} the generated size "
                                   f"{report['generated']['shape']}")
    if fails:
        text = "; ".join(f"{f['gate']} (value {f['value']:.4g})" for f in fails)
        raise ThresholdError(f"--fail-if: {text}")
