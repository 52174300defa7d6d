"""Results table: synthesize + evaluate each model on held-out phantom subjects.

Superseded by `medxlate bench --spec readme` (docs/bench.md): the same subjects, synthesize
and evaluate code, plus the constant, intensity-map and spacing-floor rows in the same run.

Generates held-out head phantoms (each depends only on the phantom seed and its index, so anyone
can regenerate them), runs `medxlate synthesize` on each subject's T1w MR exactly as a user
would, and scores the result with `medxlate evaluate` against the CT resampled onto the MR grid
through the true transform, inside the subject's body mask. Prints one JSON object per
(model, subject) and per model, then a Markdown table.

    python benchmarks/results_table.py --workdir /tmp/results \
        --model syndiff --model pix2pix --model cyclegan \
        --model ddpm=runs/ddpm/model.safetensors:ddim:50

A model is `NAME` (its shipped weights) or `NAME=WEIGHTS[:SAMPLER[:STEPS]]`. `--direction
ct2mri` scores CT -> MR instead: the input is the CT on the MR grid (`ct_on_mr.nii.gz`), the
reference the MR, and `medxlate evaluate --modality MR` compares both after normalising them
with the reference MR's percentiles (MAE in normalised units, PSNR over the range [-1, 1]). The default
subjects (`--seed 7`, indices 0 1 2) come from a phantom seed that no shipped model was trained
on (see weights/README.md), so they are held out for every model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

METRICS = ("mae", "psnr", "ssim")


def parse_model(text: str) -> dict:
    name, _, rest = text.partition("=")
    parts = rest.split(":") if rest else []
    return {"name": name, "weights": parts[0] if parts else None,
            "sampler": parts[1] if len(parts) > 1 else None,
            "steps": parts[2] if len(parts) > 2 else None,
            "label": text.split("=")[0] + (f" ({parts[1]}-{parts[2]})" if len(parts) > 2 else "")}


def make_subjects(workdir: Path, seed: int, indices: list[int]) -> list[Path]:
    from medxlate.phantom import PhantomConfig, make_subject, subject_id
    from medxlate.phantom.cohort import write_subject

    folders = []
    for index in indices:
        folder = workdir / "subjects" / subject_id("brain", index)
        if not folder.exists():
            write_subject(make_subject(PhantomConfig("brain"), seed, index), folder)
        folders.append(folder)
    return folders


def run(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr}")
    return time.perf_counter() - start


def score(model: dict, folder: Path, workdir: Path, direction: str = "mri2ct") -> dict:
    mri2ct = direction == "mri2ct"
    source, ref = ("mr", "ct_on_mr") if mri2ct else ("ct_on_mr", "mr")
    out = (workdir / ("sct" if mri2ct else "smr") / model["label"].replace(" ", "_")
           / f"{folder.name}.nii.gz")
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["medxlate", "synthesize", "--model", model["name"], "--in",
           str(folder / f"{source}.nii.gz"), "--out", str(out), "--overwrite", "--seed", "0",
           "--direction", direction]
    if model["weights"]:
        cmd += ["--weights", model["weights"]]
    if model["sampler"]:
        cmd += ["--sampler", model["sampler"]]
    if model["steps"]:
        cmd += ["--steps", model["steps"]]
    seconds = run(cmd)
    report = out.with_suffix("").with_suffix(".json")
    run(["medxlate", "evaluate", "--pred", str(out), "--ref", str(folder / f"{ref}.nii.gz"),
         "--mask", str(folder / "mask.nii.gz"), "--out", str(report), "--overwrite",
         *([] if mri2ct else ["--modality", "MR"])])
    metrics = json.loads(report.read_text())["subjects"][0]["metrics"]
    return {"model": model["label"], "subject": folder.name, "seconds": round(seconds, 2),
            **{m: metrics[m] for m in METRICS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--indices", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--direction", choices=("mri2ct", "ct2mri"), default="mri2ct")
    args = parser.parse_args()
    folders = make_subjects(args.workdir, args.seed, args.indices)
    rows = []
    for model in map(parse_model, args.model):
        mine = [score(model, folder, args.workdir, args.direction) for folder in folders]
        for row in mine:
            print(json.dumps(row))
        mean = {k: round(sum(r[k] for r in mine) / len(mine), 4) for k in (*METRICS, "seconds")}
        summary = {"model": model["label"], "subjects": len(mine), **mean,
                   "direction": args.direction,
                   "threads": os.environ.get("OMP_NUM_THREADS", "default")}
        print(json.dumps(summary))
        rows.append(summary)
    unit = "HU" if args.direction == "mri2ct" else "normalised"
    print(f"\n| model | MAE ({unit}) | PSNR (dB) | SSIM | seconds / volume |")
    print("|---|---|---|---|---|")
    for r in rows:
        mae = f"{r['mae']:.1f}" if args.direction == "mri2ct" else f"{r['mae']:.3f}"
        print(f"| {r['model']} | {mae} | {r['psnr']:.2f} | {r['ssim']:.3f} "
              f"| {r['seconds']:.1f} |")


if __name__ == "__main__":
    main()
