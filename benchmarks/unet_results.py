"""U-Net results beside the references of the same run, on the held-out head phantoms.

On the subjects of benchmarks/results_table.py (seed 7, indices 0-2, T1w MR, never trained
on), scored with `medxlate evaluate` inside each subject's body mask against the CT on the MR
grid, this prints one JSON object per row and subject and a Markdown table:

- ``constant``: the best constant guess, the median HU of the training dataset's body voxels.
- ``intensity map``: the best voxel-wise MR -> HU map: the training body voxels' MR
  (normalised as preprocess does, percentiles inside the body -> [-1, 1]) cut into 128 equal
  bins, each mapped to the median CT of its voxels (the L1-optimal value per bin); applied
  to each test MR normalised the same way inside its body mask, -1024 HU outside.
- ``floor``: the reference CT taken to the model's spacing and back (benchmarks/spacing_floor.py).
- each ``--model`` (results_table.py syntax, plus ``+tta`` and ``a,b,c`` for an ensemble):
  `medxlate synthesize` as a user runs it. With TTA or an ensemble, ``--uncertainty`` is
  written and scored: the Spearman rank correlation between |error| and the predicted
  standard deviation over body voxels, and the MAE in the top decile of predicted deviation
  against the other voxels.

    OMP_NUM_THREADS=1 python benchmarks/unet_results.py --workdir /tmp/unet \\
        --data scratch/ds60 --spacing 2 --model unet-2.5d=weights/unet-2.5d-demo.safetensors
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_table import METRICS, make_subjects  # noqa: E402
from spacing_floor import round_trip  # noqa: E402

BINS = 128


def _training_voxels(data: Path, limit: int = 40) -> tuple[np.ndarray, np.ndarray, dict]:
    """(MR in network units, CT in HU) of the training split's body voxels, every 5th."""
    from medxlate.intensity import denormalise_ct
    from medxlate.preprocess.dataset import load_dataset

    ds = load_dataset(data)
    mr, ct = [], []
    for s in ds.subjects("train")[:limit]:
        arrays = ds.shard(s["id"])
        body = np.asarray(arrays["mask"]) > 0
        mr.append(np.asarray(arrays["mr"], np.float32)[body][::5])
        ct.append(np.asarray(arrays["ct"], np.float32)[body][::5])
    spec = ds.normalisation
    return (np.concatenate(mr), denormalise_ct(np.concatenate(ct), spec["ct"]), spec)


def fit_map(mr: np.ndarray, hu: np.ndarray) -> np.ndarray:
    """Median HU per MR bin over [-1, 1] (empty bins take the nearest filled one)."""
    idx = np.clip(((mr + 1) / 2 * BINS).astype(int), 0, BINS - 1)
    table = np.full(BINS, np.nan)
    for b in range(BINS):
        if (idx == b).any():
            table[b] = np.median(hu[idx == b])
    filled = np.flatnonzero(~np.isnan(table))
    return np.interp(np.arange(BINS), filled, table[filled])


def reference_volume(folder: Path, kind: str, table, constant: float, spec: dict, out: Path):
    from medxlate.intensity import mr_params, normalise_mr
    from medxlate.io.readers import read_volume, write_volume

    mr = read_volume(folder / "mr.nii.gz", modality="MR")
    mask = np.asarray(read_volume(folder / "mask.nii.gz").array) > 0
    if kind == "constant":
        hu = np.where(mask, constant, -1024.0)
    else:
        params = mr_params(mr.array, spec["mr"], mask)
        x = normalise_mr(mr.array, spec["mr"], params)
        idx = np.clip(((x + 1) / 2 * BINS).astype(int), 0, BINS - 1)
        hu = np.where(mask, table[idx], -1024.0)
    write_volume(mr.with_array(hu.astype(np.float32), modality="CT"), out, overwrite=True)


def evaluate(pred: Path, folder: Path) -> dict:
    report = pred.with_suffix("").with_suffix(".json")
    subprocess.run(["medxlate", "evaluate", "--pred", str(pred), "--ref",
                    str(folder / "ct_on_mr.nii.gz"), "--mask", str(folder / "mask.nii.gz"),
                    "--out", str(report), "--overwrite"], check=True, capture_output=True)
    metrics = json.loads(report.read_text())["subjects"][0]["metrics"]
    return {m: metrics[m] for m in METRICS}


def uncertainty_scores(pred: Path, std: Path, folder: Path) -> dict:
    from scipy.stats import spearmanr

    from medxlate.io.readers import read_volume

    mask = np.asarray(read_volume(folder / "mask.nii.gz").array) > 0
    ref = read_volume(folder / "ct_on_mr.nii.gz").array.clip(-1024, None)
    err = np.abs(read_volume(pred).array - ref)[mask]
    sd = read_volume(std).array[mask]
    top = sd >= np.quantile(sd, 0.9)
    return {"spearman_err_std": round(float(spearmanr(err, sd).statistic), 4),
            "mae_top_decile_std": round(float(err[top].mean()), 2),
            "mae_other_voxels": round(float(err[~top].mean()), 2)}


def model_row(spec: str, folder: Path, workdir: Path) -> dict:
    name, _, rest = spec.partition("=")
    tta = rest.endswith("+tta")
    weights = [w for w in rest.removesuffix("+tta").split(",") if w]
    label = spec.replace("/", "_").replace("=", "_").replace(",", "_")
    out = workdir / "sct" / label / f"{folder.name}.nii.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["medxlate", "synthesize", "--model", name, "--in", str(folder / "mr.nii.gz"),
           "--out", str(out), "--overwrite", "--seed", "0", "--quiet"]
    for w in weights:
        cmd += ["--weights", w]
    std = None
    if tta or len(weights) > 1:
        std = out.with_name(folder.name + "_std.nii.gz")
        cmd += ["--uncertainty", str(std)] + (["--tta"] if tta else [])
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr}")
    row = {"seconds": round(time.perf_counter() - start, 2), **evaluate(out, folder)}
    if std is not None:
        row.update(uncertainty_scores(out, std, folder))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True,
                        help="the training dataset (constant guess and intensity map)")
    parser.add_argument("--spacing", type=float, default=2.0)
    parser.add_argument("--model", action="append", default=[])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--indices", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    folders = make_subjects(args.workdir, args.seed, args.indices)
    mr, hu, spec = _training_voxels(args.data)
    table, constant = fit_map(mr, hu), float(np.median(hu))
    rows: dict[str, list[dict]] = {}
    for folder in folders:
        for kind in ("constant", "intensity map", f"floor {args.spacing:g} mm"):
            out = args.workdir / "refs" / kind.replace(" ", "_") / f"{folder.name}.nii.gz"
            out.parent.mkdir(parents=True, exist_ok=True)
            if kind.startswith("floor"):
                round_trip(folder, args.spacing, out)
            else:
                reference_volume(folder, kind, table, constant, spec, out)
            rows.setdefault(kind, []).append(evaluate(out, folder))
        for spec_text in args.model:
            rows.setdefault(spec_text, []).append(model_row(spec_text, folder, args.workdir))
        for kind, mine in rows.items():
            print(json.dumps({"row": kind, "subject": folder.name, **mine[-1]}))
    table_rows = []
    for kind, mine in rows.items():
        mean = {k: round(float(np.mean([r[k] for r in mine])), 4) for k in mine[0]}
        print(json.dumps({"row": kind, "subjects": len(mine), **mean,
                          **({"constant_hu": round(constant, 1)} if kind == "constant" else {})}))
        extra = {k: v for k, v in mean.items() if k not in METRICS}
        table_rows.append(f"| {kind} | {mean['mae']:.1f} | {mean['psnr']:.2f} | "
                          f"{mean['ssim']:.3f} | {json.dumps(extra) if extra else ''} |")
    print("\n| row | MAE (HU) | PSNR (dB) | SSIM | extra |\n|---|---|---|---|---|")
    print("\n".join(table_rows))


if __name__ == "__main__":
    main()
