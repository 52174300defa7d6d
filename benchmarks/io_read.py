"""Reading speed of medxlate's volume I/O against SimpleITK, measured in the same run.

For the real CT (32 slices of 512x512) and T2 MR (12 slices) series in
../shared/data/mridir-subset, prints one JSON object per figure: the median seconds of
``read_volume`` (DICOM folder, then the same image as NIfTI and MHA) and the median
seconds of SimpleITK's own reader on the same input, with the ratio medxlate/SimpleITK.

Run: ``python benchmarks/io_read.py [--data ../shared/data/mridir-subset] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import SimpleITK as sitk

from medxlate.io import read_volume, write_volume


def _median_seconds(func, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sitk_series(folder: Path):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "mridir-subset"
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("ct", "mr_t2"):
            folder = args.data / name
            vol = read_volume(folder)
            cases = [("dicom", folder, lambda f=folder: _sitk_series(f))]
            for suffix in (".nii.gz", ".mha"):
                path = Path(tmp) / f"{name}{suffix}"
                write_volume(vol, path)
                cases.append((suffix.strip("."), path, lambda p=path: sitk.ReadImage(str(p))))
            for fmt, path, reference in cases:
                ours = _median_seconds(lambda p=path: read_volume(p), args.repeats)
                theirs = _median_seconds(reference, args.repeats)
                print(json.dumps({
                    "figure": f"read_{name}_{fmt}", "shape": list(vol.shape),
                    "medxlate_s": round(ours, 4), "simpleitk_s": round(theirs, 4),
                    "ratio_medxlate_over_simpleitk": round(ours / theirs, 2),
                    "repeats": args.repeats,
                }))


if __name__ == "__main__":
    main()
