"""Peak memory of writing a tall CT as a DICOM series (`--out-format dicom`).

Two fresh processes (GNU time's %M): one only builds a 512x512xN float32 CT volume in HU, the
other builds it and writes it with medxlate's DICOM writer. Prints one JSON object: both
peaks, their difference (what the writer adds on top of the volume it is given), the
volume's own size, seconds, and the number of files written.

Run: ``python benchmarks/dicom_write_memory.py [--slices 416]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

TIME = "/usr/bin/time"
BUILD = ("import numpy as np, sys; from medxlate.io.volume import Volume; n = int(sys.argv[1]); "
         "a = np.random.default_rng(0).uniform(-1024, 2000, (512, 512, n)).astype(np.float32); "
         "vol = Volume(a, np.diag([0.7, 0.7, 1.0, 1.0]), 'CT', {})")
WRITE = ("; from medxlate.io.dicom_write import write_dicom_series; "
         "print(len(write_dicom_series(vol, sys.argv[2])))")


def peak(code: str, *args: str) -> tuple[float, float, str]:
    start = time.perf_counter()
    proc = subprocess.run([TIME, "-f", "%M", sys.executable, "-c", code, *args],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(proc.stderr[-800:])
    return (time.perf_counter() - start, int(proc.stderr.strip().splitlines()[-1]) / 1024.0,
            proc.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=416)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _, base_mb, _ = peak(BUILD, str(args.slices))
        seconds, write_mb, files = peak(BUILD + WRITE, str(args.slices), f"{tmp}/series")
    print(json.dumps({"slices": args.slices, "volume_mb": round(512 * 512 * args.slices * 4
                                                                 / 2**20, 1),
                      "peak_build_only_mb": round(base_mb, 1),
                      "peak_build_and_write_mb": round(write_mb, 1),
                      "writer_adds_mb": round(write_mb - base_mb, 1),
                      "seconds_build_and_write": round(seconds, 2), "files": int(files)}))


if __name__ == "__main__":
    main()
