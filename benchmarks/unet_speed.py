"""Seconds to synthesize one 2 mm head with a U-Net (one thread), plain, with TTA, as an ensemble.

The input is the T1w MR of held-out phantom seed 7 subject 0 (about 1.1 mm, 174 x 207 x 161;
the model works at its plan's 2 mm spacing and the result is resampled back). Each figure is
the wall time of `medxlate synthesize` in a fresh process (reading, the model, writing) and
its CPU seconds (user + system: on a shared machine the wall time also counts the time
spent waiting for a core) and the case's seconds from its report; the float32 matmul peak of this machine
(benchmarks/cpu_peak.py), measured in the same run, is printed beside them because the
machine is shared: compare ratios between runs, not seconds. One JSON object per figure.

    OMP_NUM_THREADS=1 python benchmarks/unet_speed.py \\
        --weights weights/unet-2.5d-demo.safetensors [--tta] [--ensemble A B C ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_peak import matmul_gflops  # noqa: E402
from results_table import make_subjects  # noqa: E402


def timed(model: str, weights: list[str], folder: Path, out: Path, tta: bool) -> dict:
    cmd = ["medxlate", "synthesize", "--model", model, "--in", str(folder / "mr.nii.gz"),
           "--out", str(out), "--overwrite", "--quiet", "--device", "cpu",
           "--report", str(out.with_suffix("").with_suffix(".report.json"))]
    for w in weights:
        cmd += ["--weights", w]
    if tta:
        cmd.append("--tta")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of the process: on a shared machine its wall time also counts waiting.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr}")
    report = json.loads(out.with_suffix("").with_suffix(".report.json").read_text())
    case = report["cases"][0]
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "case_s": case.get("seconds"),
            "passes": case.get("passes", 1), "shape": case.get("shape")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet-2.5d")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--tta", action="store_true", help="also time --tta")
    parser.add_argument("--ensemble", nargs="*", default=[],
                        help="also time an ensemble of these weights")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/unet-speed"))
    args = parser.parse_args()
    folder = make_subjects(args.workdir, 7, [0])[0]
    peak = matmul_gflops()
    runs = [("plain", [args.weights], False)]
    if args.tta:
        runs.append(("tta", [args.weights], True))
    if args.ensemble:
        runs.append((f"ensemble of {len(args.ensemble)}", args.ensemble, False))
    for label, weights, tta in runs:
        row = timed(args.model, weights, folder, args.workdir / f"{label.replace(' ', '_')}.nii.gz",
                    tta)
        print(json.dumps({"figure": label, "model": args.model, "threads": 1, **row,
                          "matmul_gflops": round(peak, 2)}))


if __name__ == "__main__":
    main()
