"""Seconds to simulate one 1 mm head subject from a real label map on one core.

Run: ``python benchmarks/label_phantom_speed.py [MAPS_DIR]`` (default
../shared/data/synthseg-head-labels; sets OMP_NUM_THREADS=1 itself). Prints one JSON object
per figure: make_label_subject at 1 mm (random affine + smooth deformation, CT on its own grid,
realistic T1w MR on the misaligned MR grid, ct_on_mr, labels, mask; no file writing), once
with the label map already in memory (the per-subject cost inside a cohort) and once
including reading and checking the map; beside it, the procedural phantom at 1 mm
(``make_subject``, T1w only) and the numpy reference of benchmarks/phantom_speed.py, both
measured in the same run, with the ratios: this machine is shared and noisy, compare ratios.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import json
import sys
import time
from pathlib import Path

import numpy as np
from phantom_speed import reference_seconds  # the same numpy reference, one definition

from medxlate.phantom import PhantomConfig, make_subject
from medxlate.phantom.label_subject import LabelPhantomConfig, make_label_subject
from medxlate.phantom.labels import load_map

REPO = Path(__file__).resolve().parents[1]
def main() -> None:
    maps = Path(sys.argv[1]) if len(sys.argv) > 1 else (REPO.parent / "shared" / "data"
                                                         / "synthseg-head-labels")
    one = sorted(maps.glob("*.nii.gz"))[0]
    cfg = LabelPhantomConfig(labels=one, spacing=(1.0, 1.0, 1.0), contrasts=("t1w",))
    ref = reference_seconds()
    t = time.perf_counter()
    load_map(str(one.resolve()), cfg.label_scheme)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    s = make_label_subject(cfg, 0, 0)
    seconds = time.perf_counter() - t
    t = time.perf_counter()
    p = make_subject(PhantomConfig("brain", spacing=(1.0, 1.0, 1.0), contrasts=("t1w",)), 0, 0)
    procedural = time.perf_counter() - t
    voxels = (np.prod(s.mr["t1w"].shape) + np.prod(s.ct.shape)) / 1e6
    print(json.dumps({
        "figure": "label_phantom_head_1mm_one_core", "map": one.name,
        "seconds": round(seconds, 3), "seconds_with_map_read": round(seconds + load_s, 3),
        "map_read_seconds": round(load_s, 3),
        "mr_shape": list(s.mr["t1w"].shape), "ct_shape": list(s.ct.shape),
        "mr_plus_ct_voxels_millions": round(float(voxels), 2),
        "reference_seconds": round(ref, 4),
        "reference": "best of 5 float32 a*b+c passes over 256x256x160",
        "ratio_to_reference": round(seconds / ref, 1),
        "procedural_brain_1mm_seconds": round(procedural, 3),
        "procedural_mr_plus_ct_voxels_millions": round(
            float((np.prod(p.mr["t1w"].shape) + np.prod(p.ct.shape)) / 1e6), 2),
        "ratio_to_procedural": round(seconds / procedural, 2),
    }))


if __name__ == "__main__":
    main()
