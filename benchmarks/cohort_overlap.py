"""Cohort pipeline overhead of `synthesize`: wall time not spent in the model.

Writes a cohort of N head phantoms (seed 7, the held-out seed; N=5 by default), then runs
the library call behind `medxlate synthesize --in COHORT` three times in the same process
with the shipped pix2pix demo weights: sequential I/O and per-volume batches
(``overlap_io=False, share_batches=False``: the reference), the reader / writer threads
with per-volume batches, and the threads with batches shared across volumes (the default
for 2D/2.5D models, see medxlate.synth.stream). For each it prints one JSON object
with the wall seconds, the seconds inside ``family.translate`` (timed around every call),
the overhead ``1 - model / wall``, the number of model calls and the wall ratio to the
reference. Outputs of every run are compared voxel by voxel with the reference: identical
for pix2pix on one thread; another batch composition may round differently in float32
(``max_abs_diff_hu`` says by how much).

Run: ``OMP_NUM_THREADS=1 python benchmarks/cohort_overlap.py [--model pix2pix]
[--subjects 5] [--threads 1] [--device cpu] [--batch-size 8]``
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
        seconds: list[float], precision: str = "auto", weights: Path | None = None,
        share: bool = True, batch_size: int | str = 8) -> dict:
    from medxlate.synth.run import SynthesizeRequest, run_synthesize

    seconds.clear()
    req = SynthesizeRequest(model=model, inputs=cohort, out=out, progress=False,
                            overlap_io=overlap, device=device, precision=precision,
                            weights=weights, share_batches=share, batch_size=batch_size)
    t0 = time.perf_counter()
    result = run_synthesize(req)
    wall = time.perf_counter() - t0
    assert all(c["status"] == "ok" for c in result.cases)
    in_model = sum(seconds)
    return {"wall_s": round(wall, 3), "model_s": round(in_model, 3),
            "overhead": round(1 - in_model / wall, 4), "volumes": len(result.cases),
            "model_calls": len(seconds), "tiles": [c.get("tiles") for c in result.cases],
            "shared_batches": result.report["speed"]["cross_volume_batches"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="pix2pix")
    ap.add_argument("--subjects", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args()

    import torch

    from medxlate.io.readers import read_volume

    torch.set_num_threads(args.threads)
    seconds = timed_family(args.model)
    runs = {"sequential": (False, False), "overlapped": (True, False),
            "overlapped+shared": (True, True)}
    with tempfile.TemporaryDirectory() as tmp:
        cohort = Path(tmp) / "cohort"
        make_cohort(cohort, args.subjects, args.seed)
        rows, same, diff = {}, {}, {}
        for name, (overlap, share) in runs.items():
            out = Path(tmp) / f"out-{name}"
            rows[name] = run(cohort, out, args.model, overlap, args.device, seconds,
                             share=share, batch_size=args.batch_size)
        ref = Path(tmp) / "out-sequential"
        for name in runs:
            pairs = [(read_volume(p).array, read_volume(
                Path(tmp) / f"out-{name}" / p.relative_to(ref)).array)
                for p in sorted(ref.rglob("*.nii.gz"))]
            same[name] = all(np.array_equal(a, b) for a, b in pairs)
            diff[name] = max(float(np.abs(a - b).max()) for a, b in pairs)
    for name in runs:
        print(json.dumps({"figure": "cohort_pipeline_overhead", "model": args.model,
                          "device": args.device, "io": name, "threads": args.threads,
                          "batch_size": args.batch_size, **rows[name],
                          "wall_over_sequential": round(rows[name]["wall_s"]
                                                        / rows["sequential"]["wall_s"], 3),
                          "identical_to_sequential": bool(same[name]),
                          "max_abs_diff_hu": round(diff[name], 6)}), flush=True)


if __name__ == "__main__":
    main()
