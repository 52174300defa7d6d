"""Numerical cost of bf16 autocast in synthesis: |HU| difference from float32, same seed.

For the example (examples/brain-000) and three held-out phantoms (results_table.py's
``--seed 7`` subjects 0, 1, 2, regenerated here), runs the full synthesis pipeline of the
shipped SynDiff demo weights twice with the same seed, once in float32 and once under bf16
autocast (``--precision bf16``), and prints one JSON object per volume with the mean and
max |HU| difference inside the body mask (the subject's mask.nii.gz), the seconds of each
run and their ratio; then one summary object. On CUDA pass ``--device cuda``; on the CPU
(the default) this measures bf16's numerics (its speed there depends on AMX/AVX512-BF16).

Run: ``OMP_NUM_THREADS=1 python benchmarks/precision.py [--model syndiff] [--device cpu]
[--subjects 0 1 2] [--no-example]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def volumes(workdir: Path, seed: int, indices: list[int], example: bool):
    """(name, MR volume, body mask) of the example and the held-out phantoms, as read."""
    from medxlate.io import read_volume
    from medxlate.phantom import PhantomConfig, make_subject
    from medxlate.phantom.cohort import write_subject

    folders = [("example/brain-000", ROOT / "examples" / "brain-000")] if example else []
    for index in indices:
        subject = make_subject(PhantomConfig("brain"), seed, index)
        folder = workdir / subject.id
        write_subject(subject, folder)
        folders.append((f"phantom seed {seed} {subject.id}", folder))
    for name, folder in folders:
        mr = read_volume(folder / "mr.nii.gz", modality="MR")
        mask = read_volume(folder / "mask.nii.gz").array > 0.5
        yield name, mr, mask


def run_once(vol, model, opts, precision, seed: int):
    import torch

    from medxlate.synth.volume import synthesize_volume

    generator = torch.Generator(device=model.device).manual_seed(seed)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    with precision.context():
        sct, _, _ = synthesize_volume(vol, model, opts, generator)
    return sct.array, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="syndiff")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=7, help="phantom seed (held out: 7)")
    ap.add_argument("--subjects", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--no-example", action="store_true")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    from medxlate.synth.device import resolve_device
    from medxlate.synth.model import load_model
    from medxlate.synth.precision import resolve_precision
    from medxlate.synth.volume import SynthOptions

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    model = load_model(args.model, None, device)
    config = model.config
    opts = SynthOptions(config.get("direction", "mri2ct"), model.spec.default_sampler,
                        batch_size=args.batch_size, source="mr", target="ct")
    fp32 = resolve_precision("fp32", device, model.spec, model.family)
    bf16 = resolve_precision("bf16", device, model.spec, model.family)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, vol, mask in volumes(Path(tmp), args.seed, args.subjects,
                                       not args.no_example):
            ref, t32 = run_once(vol, model, opts, fp32, 0)
            low, t16 = run_once(vol, model, opts, bf16, 0)
            diff = np.abs(low.astype(np.float64) - ref)[mask]
            row = {"figure": "bf16_vs_fp32_hu", "model": model.spec.name,
                   "device": str(device), "volume": name, "shape": list(vol.shape),
                   "body_voxels": int(mask.sum()),
                   "mean_abs_hu": round(float(diff.mean()), 3),
                   "max_abs_hu": round(float(diff.max()), 2),
                   "p99_abs_hu": round(float(np.percentile(diff, 99)), 2),
                   "seconds_fp32": round(t32, 2), "seconds_bf16": round(t16, 2),
                   "bf16_over_fp32_time": round(t16 / t32, 3)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({"figure": "bf16_vs_fp32_summary", "model": model.spec.name,
                      "device": str(device), "volumes": len(rows),
                      "mean_abs_hu": round(float(np.mean([r["mean_abs_hu"] for r in rows])), 3),
                      "max_abs_hu": max(r["max_abs_hu"] for r in rows),
                      "within_5_hu_mean": all(r["mean_abs_hu"] <= 5 for r in rows),
                      "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
