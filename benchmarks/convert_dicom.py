"""`medxlate convert` DICOM CT -> NIfTI against dcm2niix, measured in the same run.

For the real GE CT series in ../shared/data/mridir-subset (32 slices of 512x512, int16 with
-2048 HU padding) and a taller series made from it (the 32 slices repeated ``--tile`` times
at new positions, written by medxlate's DICOM writer: 416 slices by default, the size of the
full 409-slice MRI-DIR CT), prints one JSON object per series: median wall seconds of
``medxlate convert`` and of ``dcm2niix -z y`` (each a fresh process), each one's peak
resident memory (GNU time's %M), output sizes and data types, the ratios
medxlate/dcm2niix, and whether both outputs hold the same voxel values. ``--old`` also times
the former path (read_volume + write_volume, float32) in a fresh process for comparison.

Run: ``python benchmarks/convert_dicom.py [--data DIR] [--repeats 3] [--tile 13] [--old]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

TIME = "/usr/bin/time"  # GNU time (apt package "time")
OLD_PATH = ("import sys; from medxlate.io import read_volume, write_volume; "
            "write_volume(read_volume(sys.argv[1]), sys.argv[2], overwrite=True)")


def _run(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process, from GNU time: ru_maxrss of a
    child forked from this (large) process would start at this process's own peak."""
    start = time.perf_counter()
    proc = subprocess.run([TIME, "-f", "%M", *cmd], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{cmd[0]} failed: {proc.stderr[-500:]}")
    return seconds, int(proc.stderr.strip().splitlines()[-1]) / 1024.0


def _median(cmd: list[str], repeats: int) -> tuple[float, float]:
    runs = [_run(cmd) for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def _dcm2niix() -> str:
    """The dcm2niix executable itself (the pip package's console script is a Python wrapper
    whose own memory would be measured instead)."""
    try:
        import dcm2niix

        binary = Path(dcm2niix.__file__).parent / "dcm2niix"
        if binary.is_file():
            return str(binary)
    except ImportError:
        pass
    found = shutil.which("dcm2niix")
    if found is None:
        raise SystemExit("dcm2niix not found (pip install dcm2niix, the 'test' extra)")
    return found


def _tall_series(src: Path, dst: Path, tile: int) -> None:
    from medxlate.io import Volume, read_volume, write_volume

    vol = read_volume(src)
    tall = Volume(np.concatenate([vol.array] * tile, axis=2), vol.affine, "CT", dict(vol.meta))
    write_volume(tall, dst, reference=vol, description="benchmark tall CT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "mridir-subset"
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tile", type=int, default=13)
    parser.add_argument("--old", action="store_true", help="also time read+write (float32)")
    args = parser.parse_args()
    dcm2niix = _dcm2niix()
    medxlate = str(Path(sys.executable).parent / "medxlate")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        series = {"ct_32": args.data / "ct"}
        if args.tile > 1:
            series[f"ct_{32 * args.tile}"] = tmp / "tall"
            _tall_series(args.data / "ct", tmp / "tall", args.tile)
        for name, folder in series.items():
            ours_out, d2n_dir = tmp / f"{name}.nii.gz", tmp / f"d2n_{name}"
            d2n_dir.mkdir()
            ours = _median([medxlate, "convert", str(folder), str(ours_out), "--overwrite"],
                           args.repeats)
            theirs = _median([dcm2niix, "-z", "y", "-b", "n", "-f", "out", "-o", str(d2n_dir),
                              str(folder)], args.repeats)
            a, b = nib.load(ours_out), nib.load(d2n_dir / "out.nii.gz")
            # dcm2niix keeps the DICOM row order (LPS-like); compare in canonical order
            va = np.asanyarray(nib.as_closest_canonical(a).dataobj)
            vb = np.asanyarray(nib.as_closest_canonical(b).dataobj)
            row = {"figure": f"convert_{name}", "shape": list(a.shape),
                   "medxlate_s": round(ours[0], 3), "dcm2niix_s": round(theirs[0], 3),
                   "ratio_s": round(ours[0] / theirs[0], 2),
                   "medxlate_peak_mb": round(ours[1], 1), "dcm2niix_peak_mb": round(theirs[1], 1),
                   "ratio_peak": round(ours[1] / theirs[1], 2),
                   "medxlate_mb": round(ours_out.stat().st_size / 2**20, 2),
                   "dcm2niix_mb": round((d2n_dir / "out.nii.gz").stat().st_size / 2**20, 2),
                   "medxlate_dtype": str(a.get_data_dtype()),
                   "dcm2niix_dtype": str(b.get_data_dtype()),
                   "same_values": bool(va.shape == vb.shape and np.array_equal(va, vb))}
            if args.old:
                old_out = tmp / f"old_{name}.nii.gz"
                old = _median([sys.executable, "-c", OLD_PATH, str(folder), str(old_out)],
                              args.repeats)
                row.update(old_s=round(old[0], 3), old_peak_mb=round(old[1], 1),
                           old_mb=round(old_out.stat().st_size / 2**20, 2))
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
