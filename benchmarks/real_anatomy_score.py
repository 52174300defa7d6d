"""Score MR -> CT models on held-out real-anatomy subjects (`medxlate phantom --labels`).

For each model and each held-out subject and contrast (mr_t1, mr_t2 of a cohort made with
``--contrast both``), runs `medxlate synthesize` as a user would and scores the synthetic CT on
the subject's MR grid against ``ct_on_mr.nii.gz`` (the CT through the true transform), inside
``mask.nii.gz``:

- ``mae``: mean absolute error (HU) in the body mask;
- ``dice_bone``: Dice of the > 300 HU regions (synthetic vs reference) in the mask;
- ``brain_above_300_pct``: % of the brain (map labels 2-60, ``labels_source.nii.gz``) that
  the synthetic CT puts above 300 HU;
- ``air_mae``: MAE inside the reference air (< -400 HU) within the body mask (sinuses,
  airways);

beside two reference rows computed in the same run from a training cohort of the same kind
(training maps only), per contrast: ``constant`` (the median training CT in the body, everywhere)
and ``intensity-map`` (the median training CT per bin of 64 of the MR normalised to [-1, 1]
between its 0.5 and 99.5 percentiles in the body; the best voxel-wise lookup).

    python benchmarks/real_anatomy_score.py --workdir W --held scratch/real_held \\
        --train t1=scratch/real_train --train t2=scratch/real_train_t2 \\
        --model syndiff --model new=syndiff:runs/ft/model.safetensors

Prints one JSON object per (row, subject, contrast) and per (row, contrast), then a table.
`medxlate bench --spec real-anatomy` computes the same figures (medxlate.evaluate.anatomy)
inside the bench, beside its own reference rows (docs/bench.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

BINS = 64


def load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj, dtype=np.float32)


def normalise_mr(mr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(mr[mask], [0.5, 99.5])
    return np.clip((mr - lo) / max(hi - lo, 1e-6) * 2 - 1, -1, 1)


def fit_references(cohort: Path, contrast: str) -> dict:
    """Constant and intensity-map rows fitted on every body voxel of a training cohort."""
    xs, ys = [], []
    for folder in sorted(p for p in cohort.iterdir() if (p / "truth.json").is_file()):
        mr_file = folder / f"mr_{contrast}.nii.gz"
        mr_file = mr_file if mr_file.is_file() else folder / "mr.nii.gz"
        mask = load(folder / "mask.nii.gz") > 0
        xs.append(normalise_mr(load(mr_file), mask)[mask])
        ys.append(load(folder / "ct_on_mr.nii.gz")[mask])
    x, y = np.concatenate(xs), np.concatenate(ys)
    bins = np.clip(((x + 1) / 2 * BINS).astype(int), 0, BINS - 1)
    table = np.full(BINS, np.nan)
    for b in range(BINS):
        if (bins == b).any():
            table[b] = np.median(y[bins == b])
    filled = np.flatnonzero(~np.isnan(table))
    for b in np.flatnonzero(np.isnan(table)):  # empty bins: the nearest filled bin
        table[b] = table[filled[np.argmin(np.abs(filled - b))]]
    return {"constant": float(np.median(y)), "map": table, "subjects": len(xs)}


def metrics(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray, source: np.ndarray) -> dict:
    """MAE in the mask and the anatomy figures of medxlate.evaluate.anatomy (also the bench's)."""
    from medxlate.evaluate.anatomy import anatomy_metrics

    figures = anatomy_metrics(pred, ref, mask, source)
    return {"mae": float(np.abs(pred - ref)[mask].mean()),
            "dice_bone": figures["bone_dice_300"],
            "brain_above_300_pct": figures["brain_over_300_pct"],
            "air_mae": figures["air_mae"]}


def synthesize(model: dict, mr: Path, out: Path) -> float:
    cmd = ["medxlate", "synthesize", "--model", model["name"], "--in", str(mr), "--out",
           str(out), "--overwrite", "--seed", "0"]
    if model["weights"]:
        cmd += ["--weights", model["weights"]]
    start = time.perf_counter()
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr}")
    return time.perf_counter() - start


def parse_model(text: str) -> dict:
    """``NAME`` (shipped weights) or ``LABEL=NAME:WEIGHTS``."""
    label, _, rest = text.partition("=")
    if not rest:
        return {"label": label, "name": label, "weights": None}
    name, _, weights = rest.partition(":")
    return {"label": label, "name": name, "weights": weights or None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--held", type=Path, required=True)
    parser.add_argument("--train", action="append", required=True,
                        help="CONTRAST=COHORT (t1=..., t2=...): cohort for the reference rows")
    parser.add_argument("--model", action="append", default=[])
    args = parser.parse_args()
    train = dict(t.split("=", 1) for t in args.train)
    subjects = sorted(p for p in args.held.iterdir() if (p / "truth.json").is_file())
    rows = []
    for contrast, cohort in train.items():
        ref_fit = fit_references(Path(cohort), contrast)
        per = {"constant": [], "intensity-map": []}
        models = [parse_model(m) for m in args.model]
        per.update({m["label"]: [] for m in models})
        for folder in subjects:
            mr_file = folder / f"mr_{contrast}.nii.gz"
            ref, mask = load(folder / "ct_on_mr.nii.gz"), load(folder / "mask.nii.gz") > 0
            source = load(folder / "labels_source.nii.gz")
            mr = load(mr_file)
            preds = {"constant": np.full(ref.shape, ref_fit["constant"], np.float32)}
            x = normalise_mr(mr, mask)
            preds["intensity-map"] = ref_fit["map"][np.clip(((x + 1) / 2 * BINS).astype(int),
                                                            0, BINS - 1)].astype(np.float32)
            seconds = {}
            for m in models:
                out = args.workdir / m["label"] / f"{folder.name}_{contrast}.nii.gz"
                out.parent.mkdir(parents=True, exist_ok=True)
                if not out.is_file():
                    seconds[m["label"]] = synthesize(m, mr_file, out)
                preds[m["label"]] = load(out)
            for label, pred in preds.items():
                row = {"row": label, "subject": folder.name, "contrast": contrast,
                       **metrics(pred, ref, mask, source)}
                if label in seconds:
                    row["seconds"] = round(seconds[label], 1)
                print(json.dumps(row), flush=True)
                per[label].append(row)
        for label, mine in per.items():
            mean = {k: round(float(np.nanmean([r[k] for r in mine])), 2)
                    for k in ("mae", "dice_bone", "brain_above_300_pct", "air_mae")}
            summary = {"row": label, "contrast": contrast, "subjects": len(mine), **mean,
                       "reference_fit_subjects": ref_fit["subjects"]}
            print(json.dumps(summary), flush=True)
            rows.append(summary)
    print("\n| row | contrast | MAE (HU) | Dice >300 HU | brain >300 HU (%) | MAE in air (HU) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['row']} | {r['contrast']} | {r['mae']:.1f} | {r['dice_bone']:.3f} "
              f"| {r['brain_above_300_pct']:.2f} | {r['air_mae']:.1f} |")


if __name__ == "__main__":
    main()
