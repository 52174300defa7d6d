"""Cohort pipeline overhead of `synthesize`: wall time not spent in the model.

Writes a cohort of N head phantoms (seed 7, the held-out seed; N=5 by default), then runs
the library call behind `medxlate synthesize --in COHORT` twice in the same process with
the shipped pix2pix demo weights: sequential I/O (``overlap_io=False``) and the reader /
writer threads (the default). For each it prints one JSON object with the wall seconds,
the seconds inside ``family.translate`` (timed around every call), the overhead
``1 - model / wall`` and the overlapped/sequential wall ratio. Outputs of the two runs are
compared voxel by voxel (they must be identical).

Run: ``OMP_NUM_THREADS=1 python benchmarks/cohort_overlap.py [--model pix2pix]
[--subjects 5] [--threads 1] [--device cpu]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def make_cohort(folder: Path, n: int, seed: int) -> None:
    from medxlate.phantom import PhantomConfig
    from medxlate.phantom.cohort import generate_cohort

    generate_cohort(folder, n, PhantomConfig("brain"), seed)


def timed_family(model_name: str):
    """Patch the family's translate with a timer; returns the list of call seconds."""
    from medxlate.models.registry import get_spec

    family = get_spec(model_name).load_entry()
    cls = type(family)
    real = cls.translate
    seconds: list[float] = []

    def translate(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            out = real(self, *args, **kwargs)
            if hasattr(out, "device") and out.device.type == "cuda":
                import torch

                torch.cuda.synchronize(out.device)
            return out
        finally:
            seconds.append(time.perf_counter() - t0)

    cls.translate = translate
    return seconds


def run(cohort: Path, out: Path, model: str, overlap: bool, device: str,
        seconds: list[float], precision: str = "auto", weights: Path | None = None) -> dict:
    from medxlate.synth.run import SynthesizeRequest, run_synthesize

    seconds.clear()
    req = SynthesizeRequest(model=model, inputs=cohort, out=out, progress=False,
                            overlap_io=overlap, device=device, precision=precision,
                            weights=weights)
    t0 = time.perf_counter()
    result = run_synthesize(req)
    wall = time.perf_counter() - t0
    assert all(c["status"] == "ok" for c in result.cases)
    in_model = sum(seconds)
    return {"wall_s": round(wall, 3), "model_s": round(in_model, 3),
            "overhead": round(1 - in_model / wall, 4), "volumes": len(result.cases)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="pix2pix")
    ap.add_argument("--subjects", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import torch

    from medxlate.io.readers import read_volume

    torch.set_num_threads(args.threads)
    seconds = timed_family(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        cohort = Path(tmp) / "cohort"
        make_cohort(cohort, args.subjects, args.seed)
        rows = {}
        for overlap in (False, True):
            out = Path(tmp) / f"out-{overlap}"
            rows[overlap] = run(cohort, out, args.model, overlap, args.device, seconds)
        seq_out, ovl_out = Path(tmp) / "out-False", Path(tmp) / "out-True"
        same = all(np.array_equal(read_volume(p).array,
                                  read_volume(ovl_out / p.relative_to(seq_out)).array)
                   for p in sorted(seq_out.rglob("*.nii.gz")))
    for overlap in (False, True):
        print(json.dumps({"figure": "cohort_pipeline_overhead", "model": args.model,
                          "device": args.device, "io": "overlapped" if overlap else
                          "sequential", "threads": args.threads, **rows[overlap]}), flush=True)
    print(json.dumps({"figure": "cohort_overlap_ratio", "model": args.model,
                      "wall_overlapped_over_sequential":
                          round(rows[True]["wall_s"] / rows[False]["wall_s"], 3),
                      "identical_outputs": bool(same)}), flush=True)


if __name__ == "__main__":
    main()
