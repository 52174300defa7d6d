"""Real T2w MR (../shared/data/mridir-subset/mr_t2, a porcine head-and-neck specimen, GE 3 T)
through `medxlate synthesize` with each model given: what the synthetic CT holds inside the
specimen, whether bone appears, and what the input guard said.

The specimen's real CT (same folder, another frame of reference, reversed orientation) is
summarised the same way as a reference for the HU distribution; it is not aligned with the
MR, so no voxel-wise error is computed.

    python benchmarks/any_contrast_mridir.py --workdir scratch/mridir \
        --model anycontrast=runs/ac/model.safetensors --model t1only=runs/t1/model.safetensors
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

MRIDIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mridir-subset"


def hu_summary(array: np.ndarray, mask: np.ndarray) -> dict:
    v = array[mask]
    soft = v[(v > -200) & (v < 200)]
    return {"body_voxels": int(mask.sum()),
            "median_hu": round(float(np.median(v)), 1),
            "soft_tissue_median_hu": round(float(np.median(soft)), 1) if soft.size else None,
            "fraction_above_300_hu": round(float((v > 300).mean()), 4),
            "p99_hu": round(float(np.percentile(v, 99)), 1)}


def main() -> None:
    from medxlate.io.readers import read_volume
    from medxlate.preprocess.mask import body_mask

    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--model", action="append", required=True,
                    help="LABEL=WEIGHTS (the registry model is read from the checkpoint)")
    ap.add_argument("--data", type=Path, default=MRIDIR)
    args = ap.parse_args()
    from medxlate.weights.format import read_meta  # the model each checkpoint was trained as

    args.workdir.mkdir(parents=True, exist_ok=True)
    mr = read_volume(args.data / "mr_t2", modality="MR")
    body = body_mask(mr, "MR")
    ct = read_volume(args.data / "ct", modality="CT")
    print(json.dumps({"image": "real CT (not aligned)", **hu_summary(ct.array,
                                                                      body_mask(ct, "CT"))}))
    for spec in args.model:
        label, weights = spec.split("=", 1)
        out = args.workdir / f"{label}_sct.nii.gz"
        report = args.workdir / f"{label}.json"
        done = subprocess.run([sys.executable, "-m", "medxlate", "synthesize", "--model",
                               read_meta(weights).model, "--weights", weights, "--in",
                               str(args.data / "mr_t2"), "--out", str(out), "--quiet",
                               "--overwrite", "--report", str(report)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{label}: synthesize failed ({done.returncode}): {done.stderr}")
        sct = read_volume(out, modality="CT")
        case = json.loads(report.read_text())["cases"][0]
        warned = [ln for ln in done.stderr.splitlines() if "outside what" in ln]
        print(json.dumps({"model": label, **hu_summary(sct.array, body),
                          "guard": [f["check"] for f in case.get("input_warnings", [])],
                          "warning": warned[0] if warned else None}))


if __name__ == "__main__":
    main()
