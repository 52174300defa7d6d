"""Seconds to generate one 256x256x160 phantom subject on one core, against a numpy reference.

Run: ``python benchmarks/phantom_speed.py`` (sets OMP_NUM_THREADS=1 itself). Prints one JSON
object per region: wall seconds for make_subject (MR 256x256x160 at 1 mm, T1w and T2w, the CT
on its own grid, ct_on_mr, labels, mask; no file writing), the reference (the best of five
``a * b + c`` passes over float32 arrays of the MR volume size, measured in the same run) and
their ratio, which is what to compare across machines.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import json
import time

import numpy as np

from medxlate.phantom import PhantomConfig, make_subject

SHAPE = (256, 256, 160)


def reference_seconds() -> float:
    rng = np.random.default_rng(0)
    a, b, c = (rng.random(SHAPE, dtype=np.float32) for _ in range(3))
    best = np.inf
    for _ in range(5):
        t = time.perf_counter()
        _ = a * b + c
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ref = reference_seconds()
    for region in ("brain", "pelvis"):
        cfg = PhantomConfig(region, size=SHAPE, spacing=(1.0, 1.0, 1.0) if region == "brain"
                            else (1.6, 1.6, 1.6), contrasts=("t1w", "t2w"))
        t = time.perf_counter()
        s = make_subject(cfg, 0, 0)
        seconds = time.perf_counter() - t
        print(json.dumps({
            "figure": f"phantom_{region}_256x256x160_one_core",
            "seconds": round(seconds, 3), "reference_seconds": round(ref, 4),
            "reference": "best of 5 float32 a*b+c passes over 256x256x160",
            "ratio_to_reference": round(seconds / ref, 1),
            "mr_shape": list(s.mr["t1w"].shape), "mr_spacing_mm": list(s.mr["t1w"].spacing),
            "ct_shape": list(s.ct.shape), "ct_spacing_mm": list(s.ct.spacing),
            "mr_plus_ct_voxels_millions": round((np.prod(s.mr["t1w"].shape)
                                                 + np.prod(s.ct.shape)) / 1e6, 2),
        }))


if __name__ == "__main__":
    main()
