"""Held-out phantoms through `medxlate synthesize`: T1w, T2w, and T1w at 1x1x5 mm with bias
and noise, for each model given (issue 24's table: any-contrast vs T1-only).

Subjects are `medxlate phantom` seed 7, indices 0-2 (held out for every model here), at the
generator's native ~1 mm grid with T1w and T2w. The thick input is the T1w image seen by a
5 mm slab (Gaussian of 5 mm FWHM along z, sampled every 5 mm onto a 1x1x5 mm grid), times a
smooth bias field (log-std 0.2) with Rician noise (sigma 2 % of the 99th percentile), seeded
per subject. Scores: MAE (HU) of the synthetic CT against the CT on the MR grid through the
true transform (ct_on_mr), inside the subject's body mask; for the thick input both lie on
the thick grid (the reference through the same slab). Prints one JSON object per (model,
input, subject), one per (model, input), and the guard's warnings per input.

    python benchmarks/any_contrast_bench.py --workdir scratch/acbench \
        --model anycontrast=runs/ac/model.safetensors --model t1only=runs/t1/model.safetensors
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

INPUTS = ("t1", "t2", "t1_1x1x5_bias_noise")


def make_inputs(workdir: Path, seed: int, index: int) -> dict[str, Path]:
    from medxlate.io.nifti import write_nifti
    from medxlate.io.readers import read_volume
    from medxlate.phantom import PhantomConfig, make_subject, subject_id
    from medxlate.phantom.cohort import write_subject

    folder = workdir / "subjects" / subject_id("brain", index)
    if not (folder / "truth.json").exists():
        write_subject(make_subject(PhantomConfig("brain", contrasts=("t1w", "t2w")), seed,
                                   index), folder)
    thick = folder / "mr_t1_thick.nii.gz"
    if not thick.exists():
        rng = np.random.default_rng([seed, index, 24])
        t1 = read_volume(folder / "mr_t1.nii.gz", modality="MR")
        mr = slab(t1)
        from medxlate.phantom.any_contrast import bias_field

        a = mr.array * bias_field(mr.shape, rng, 0.2)
        sigma = 0.02 * float(np.percentile(a[a > 0], 99))
        n1, n2 = rng.standard_normal((2, *a.shape)).astype(np.float32) * sigma
        write_nifti(mr.with_array(np.sqrt((a + n1) ** 2 + n2 ** 2).astype(np.float32)), thick)
        ct = read_volume(folder / "ct_on_mr.nii.gz", modality="CT")
        write_nifti(slab(ct), folder / "ct_on_mr_thick.nii.gz")
        mask = read_volume(folder / "mask.nii.gz")
        from medxlate.synth.grid import to_spacing

        write_nifti(to_spacing(mask, [1.0, 1.0, 5.0], order=0), folder / "mask_thick.nii.gz")
    return {"t1": folder / "mr_t1.nii.gz", "t2": folder / "mr_t2.nii.gz",
            "t1_1x1x5_bias_noise": thick}


def slab(vol):
    """``vol`` through a 5 mm slab along z, on a 1 x 1 x 5 mm grid."""
    from scipy import ndimage

    from medxlate.synth.grid import to_spacing

    sigma_vox = 5.0 / 2.3548 / float(vol.spacing[2])
    blurred = vol.with_array(ndimage.gaussian_filter(vol.array, [0, 0, sigma_vox],
                                                     mode="nearest").astype(np.float32))
    return to_spacing(blurred, [1.0, 1.0, 5.0])


def mae(sct: Path, ct: Path, mask: Path) -> float:
    from medxlate.io.readers import read_volume

    a = read_volume(sct, modality="CT").array
    b = read_volume(ct, modality="CT").array
    m = read_volume(mask).array > 0.5
    return float(np.abs(a[m] - b[m]).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--model", action="append", required=True,
                    help="LABEL=WEIGHTS (the registry model is read from the checkpoint)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--indices", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    from medxlate.weights.format import read_meta  # the model each checkpoint was trained as

    subjects = {i: make_inputs(args.workdir, args.seed, i) for i in args.indices}
    table = {}
    for spec in args.model:
        label, weights = spec.split("=", 1)
        for kind in INPUTS:
            scores = []
            for i, inputs in subjects.items():
                folder = inputs["t1"].parent
                out = args.workdir / "out" / label / kind / f"{folder.name}.nii.gz"
                report = out.with_suffix(".json")
                out.parent.mkdir(parents=True, exist_ok=True)
                if not out.exists():
                    subprocess.run([sys.executable, "-m", "medxlate", "synthesize", "--model",
                                    read_meta(weights).model, "--weights", weights, "--in",
                                    str(inputs[kind]), "--out", str(out), "--quiet",
                                    "--report", str(report)], check=True, capture_output=True)
                thick = kind.startswith("t1_1x1x5")
                score = mae(out, folder / ("ct_on_mr_thick.nii.gz" if thick else
                                           "ct_on_mr.nii.gz"),
                            folder / ("mask_thick.nii.gz" if thick else "mask.nii.gz"))
                case = json.loads(report.read_text())["cases"][0]
                warned = [f["check"] for f in case.get("input_warnings", [])]
                print(json.dumps({"model": label, "input": kind, "subject": folder.name,
                                  "mae_hu": round(score, 1), "guard": warned}), flush=True)
                scores.append(score)
            table[(label, kind)] = float(np.mean(scores))
            print(json.dumps({"model": label, "input": kind, "mae_hu_mean":
                              round(table[(label, kind)], 1), "subjects": len(scores)}),
                  flush=True)
    for spec in args.model:
        label = spec.split("=", 1)[0]
        t1 = table[(label, "t1")]
        print(json.dumps({"model": label, **{k: round(table[(label, k)], 1) for k in INPUTS},
                          **{f"{k}_vs_t1": round(table[(label, k)] / t1, 3)
                             for k in INPUTS[1:]}}))


if __name__ == "__main__":
    main()
