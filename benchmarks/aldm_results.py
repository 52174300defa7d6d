"""ALDM results rows: one 3D model, two targets (T1w -> CT, T1w -> T2w), beside a 2D baseline.

Regenerates the held-out head phantoms of the ALDM demo's cohort (`medxlate phantom --seed
1414 --contrast both`; the demo dataset's test split is brain-000, -002, -003, -005, see
weights/aldm-demo.md), runs `medxlate synthesize` on each subject's T1w MR exactly as a user
would (aldm with `--source t1 --target ct` and `--target t2`; the 2D baseline `pix2pix` on the
same MR), and scores every output with `medxlate evaluate` inside the body mask: the CT
against the CT resampled onto the MR through the true transform (`--modality ct`), the T2w
against the rendered T2w (`--modality t2`, both normalised with the reference's percentiles).
Prints one JSON object per (model, target, subject) and per (model, target), then a Markdown
table with mean +- sd; `--montage OUT.png` also draws the sagittal montage of the first
subject (examples/aldm_sagittal.py).

    OMP_NUM_THREADS=1 python benchmarks/aldm_results.py --workdir /tmp/aldm-results \
        --weights weights/aldm-demo.safetensors --montage docs/aldm_sagittal.png \
        --dataset ds4mm      # optional: the autoencoder's own reconstruction ceiling
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_table import run

METRICS = ("mae", "psnr", "ssim", "nmse")


def make_subjects(workdir: Path, seed: int, indices: list[int]) -> list[Path]:
    from medxlate.phantom import PhantomConfig, make_subject, subject_id
    from medxlate.phantom.cohort import write_subject

    folders = []
    for index in indices:
        folder = workdir / "subjects" / subject_id("brain", index)
        if not folder.exists():
            config = PhantomConfig("brain", contrasts=("t1w", "t2w"))
            write_subject(make_subject(config, seed, index), folder)
        folders.append(folder)
    return folders


def one(model: str, weights: str | None, target: str, folder: Path, workdir: Path,
        sampler: list[str]) -> dict:
    out = workdir / model / target / f"{folder.name}.nii.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["medxlate", "synthesize", "--model", model, "--in", str(folder / "mr.nii.gz"),
           "--out", str(out), "--overwrite", "--seed", "0", "--quiet", "--device", "cpu"]
    if model == "aldm":
        cmd += ["--source", "t1", "--target", target, *sampler]
    if weights:
        cmd += ["--weights", weights]
    seconds = run(cmd)
    ref = folder / ("ct_on_mr.nii.gz" if target == "ct" else f"mr_{target}.nii.gz")
    report = out.with_suffix("").with_suffix(".json")
    run(["medxlate", "evaluate", "--pred", str(out), "--ref", str(ref), "--mask",
         str(folder / "mask.nii.gz"), "--modality", target, "--out", str(report),
         "--overwrite", "--quiet"])
    metrics = json.loads(report.read_text())["subjects"][0]["metrics"]
    return {"model": model, "target": target, "subject": folder.name, "output": str(out),
            "seconds": round(seconds, 2), **{m: metrics[m] for m in METRICS}}


def autoencoder_ceiling(dataset: Path, weights: str | None, subjects: list[str]) -> list[dict]:
    """What the VQ-VAE alone loses: each subject's 3D training volume (the dataset's
    ``volumes/<id>.safetensors``) encoded, quantised and decoded, mean |error| inside the
    body (CT > -1014 HU) in HU for CT and in normalised units for T2w. Every ALDM output
    is decoded by this autoencoder, so this bounds the rows from below."""
    import numpy as np
    import torch
    from safetensors.numpy import load_file

    from medxlate.synth.model import load_model

    vq = load_model("aldm", weights, torch.device("cpu")).nets["vqvae"]
    rows = []
    for sid in subjects:
        arrays = load_file(str(dataset / "volumes" / f"{sid}.safetensors"))
        body = arrays["ct"].astype(np.float32) > -0.995
        row = {"ceiling": "vq-vae reconstruction", "subject": sid}
        for key, scale in (("ct", 2012.0), ("t2", 1.0)):   # CT window [-1024, 3000] / 2
            x = torch.from_numpy(arrays[key].astype(np.float32))[None, None]
            with torch.no_grad():
                r = vq.decode_stage_2_outputs(vq.encode_stage_2_inputs(x)).clamp(-1, 1)
            error = (r - x).abs().numpy()[0, 0]
            row[f"{key}_mae"] = round(float(error[body].mean()) * scale, 4)
        rows.append(row)
    return rows


def summarise(rows: list[dict]) -> dict:
    out = {"model": rows[0]["model"], "target": rows[0]["target"], "subjects": len(rows)}
    for key in (*METRICS, "seconds"):
        values = [r[key] for r in rows]
        out[key] = round(statistics.fmean(values), 4)
        out[key + "_sd"] = round(statistics.pstdev(values), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--weights", help="aldm weights (default: the shipped demo)")
    parser.add_argument("--baseline", default="pix2pix",
                        help="2D MR->CT model scored on the same subjects ('' for none)")
    parser.add_argument("--seed", type=int, default=1414)
    parser.add_argument("--indices", type=int, nargs="+", default=[0, 2, 3, 5])
    parser.add_argument("--sampler", default=None, help="aldm sampler (default: its own)")
    parser.add_argument("--steps", default=None, help="aldm sampler steps")
    parser.add_argument("--montage", type=Path, help="write the sagittal montage here")
    parser.add_argument("--dataset", type=Path,
                        help="the demo's dataset: also print the VQ-VAE reconstruction "
                             "ceiling on the subjects' 3D volumes")
    args = parser.parse_args()
    sampler = ([*(["--sampler", args.sampler] if args.sampler else []),
                *(["--steps", args.steps] if args.steps else [])])
    folders = make_subjects(args.workdir, args.seed, args.indices)
    jobs = [("aldm", args.weights, "ct"), ("aldm", args.weights, "t2")]
    if args.baseline:
        jobs.append((args.baseline, None, "ct"))
    summaries, outputs = [], {}
    for model, weights, target in jobs:
        rows = [one(model, weights, target, f, args.workdir, sampler) for f in folders]
        for row in rows:
            print(json.dumps(row), flush=True)
        outputs[(model, target)] = rows[0]["output"]
        summary = {**summarise(rows), "threads": os.environ.get("OMP_NUM_THREADS", "default")}
        print(json.dumps(summary), flush=True)
        summaries.append(summary)
    print("\n| model | target | MAE | PSNR (dB) | SSIM | NMSE | seconds / volume |")
    print("|---|---|---|---|---|---|---|")
    for s in summaries:
        mae = (f"{s['mae']:.1f} ± {s['mae_sd']:.1f} HU" if s["target"] == "ct"
               else f"{s['mae']:.3f} ± {s['mae_sd']:.3f}")
        print(f"| {s['model']} | t1->{s['target']} | {mae} | {s['psnr']:.2f} ± "
              f"{s['psnr_sd']:.2f} | {s['ssim']:.3f} ± {s['ssim_sd']:.3f} | "
              f"{s['nmse']:.3f} ± {s['nmse_sd']:.3f} | {s['seconds']:.1f} |")
    if args.dataset:
        ceiling = autoencoder_ceiling(args.dataset, args.weights, [f.name for f in folders])
        for row in ceiling:
            print(json.dumps(row))
        print(json.dumps({"ceiling": "vq-vae reconstruction", "subjects": len(ceiling),
                          **{k: round(statistics.fmean(r[k] for r in ceiling), 4)
                             for k in ("ct_mae", "t2_mae")}}))
    if args.montage:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
        from aldm_sagittal import main as montage

        montage(str(folders[0]), outputs[("aldm", "ct")], outputs[("aldm", "t2")],
                outputs[(args.baseline, "ct")] if args.baseline else outputs[("aldm", "ct")],
                str(args.montage))
        print(json.dumps({"montage": str(args.montage)}))


if __name__ == "__main__":
    main()
