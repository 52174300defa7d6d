"""Seconds per preprocessing step for one 256 x 256 x 160 MR/CT phantom pair.

Prints one JSON object per figure: each step's wall time, the rigid registration's parts, and
the ratio to a reference workload measured in the same run (a 3D Gaussian smoothing of the
MR volume with scipy), so numbers from noisy shared machines can be compared.

    python benchmarks/preprocess_speed.py [--threads 2] [--flip]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="SimpleITK threads (cores)")
    parser.add_argument("--flip", action="store_true", help="phantom turned over (180 deg)")
    parser.add_argument("--size", type=int, nargs=3, default=(256, 256, 160))
    args = parser.parse_args()

    import SimpleITK as sitk
    from scipy import ndimage

    from medxlate.phantom.cohort import write_subject
    from medxlate.phantom.subject import PhantomConfig, make_subject
    from medxlate.preprocess.config import build_config
    from medxlate.preprocess.inputs import SubjectInput
    from medxlate.preprocess.pipeline import process_subject

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    config = PhantomConfig(region="brain", size=tuple(args.size), spacing=(1.0, 1.0, 1.0),
                           flip=args.flip)
    subject = make_subject(config, seed=0, index=0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / subject.id
        write_subject(subject, folder)
        mr = subject.mr[next(iter(subject.mr))].array
        start = time.perf_counter()
        ndimage.gaussian_filter(mr, 2.0)
        reference = time.perf_counter() - start
        print(json.dumps({"figure": "reference", "what": "scipy gaussian_filter sigma=2 on MR",
                          "shape": list(mr.shape), "seconds": round(reference, 3)}))
        s = SubjectInput(subject.id, folder / "mr.nii.gz", folder / "ct.nii.gz",
                         folder / "mask.nii.gz", folder / "truth.json")
        cfg = build_config("brain")
        start, cpu = time.perf_counter(), time.process_time()
        record = process_subject(s, cfg, True, Path(tmp) / "work")
        total, cpu = time.perf_counter() - start, time.process_time() - cpu
    reg = record["registration"]
    for step, seconds in record["time_s"].items():
        print(json.dumps({"figure": "step", "step": step, "seconds": seconds,
                          "ratio_to_reference": round(seconds / reference, 2)}))
    print(json.dumps({"figure": "registration", **{f"{k}_s": v for k, v in reg["time_s"].items()},
                      "rigid_under_60s": reg["time_s"]["total"] < 60.0,
                      "tre_mm": reg["tre_mm"], "best_start": reg["init_search"]["best"]}))
    print(json.dumps({"figure": "subject", "shape_in": list(args.size), "threads": args.threads,
                      "seconds": round(total, 2), "cpu_seconds_all_threads": round(cpu, 2),
                      "ratio_to_reference": round(total / reference, 2),
                      "n_slices": record["n_slices"], "shape_out": record["shape"],
                      "note": "2-core machine shared with other agents: wall times are inflated",
                      "load_average_1min": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
