"""Resolution floor of a model that works at a coarser spacing than the scored grid.

`medxlate bench` computes this floor for every working grid of its rows (docs/bench.md).

`medxlate synthesize` resamples the input to the checkpoint's training spacing, runs the model
there and resamples the result back onto the input grid (medxlate.synth.grid, linear both
ways). A perfect model at that spacing can therefore do no better than the reference CT itself
taken through the same two resamplings. This script scores exactly that round trip with
`medxlate evaluate`, on the held-out phantoms of benchmarks/results_table.py (same seed and
indices, same reference and mask), so its numbers bound a row of that table from below.

    python benchmarks/spacing_floor.py --workdir /tmp/results --spacing 4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_table import METRICS, make_subjects


def round_trip(folder: Path, spacing: float, out: Path) -> None:
    from medxlate.io.readers import read_volume, write_volume
    from medxlate.synth.grid import onto_grid, to_spacing

    ct = read_volume(folder / "ct_on_mr.nii.gz", modality="CT")
    work = to_spacing(ct, [spacing] * 3)
    back = onto_grid(work.array, work.affine, ct)
    write_volume(ct.with_array(back), out, overwrite=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--spacing", type=float, required=True, help="isotropic, mm")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--indices", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    rows = []
    for folder in make_subjects(args.workdir, args.seed, args.indices):
        out = args.workdir / f"floor_{args.spacing:g}mm" / f"{folder.name}.nii.gz"
        out.parent.mkdir(parents=True, exist_ok=True)
        round_trip(folder, args.spacing, out)
        report = out.with_suffix("").with_suffix(".json")
        subprocess.run(["medxlate", "evaluate", "--pred", str(out), "--ref",
                        str(folder / "ct_on_mr.nii.gz"), "--mask", str(folder / "mask.nii.gz"),
                        "--out", str(report), "--overwrite"], check=True, capture_output=True)
        metrics = json.loads(report.read_text())["subjects"][0]["metrics"]
        row = {"subject": folder.name, "spacing_mm": args.spacing,
               **{m: metrics[m] for m in METRICS}}
        print(json.dumps(row))
        rows.append(row)
    print(json.dumps({"spacing_mm": args.spacing, "subjects": len(rows),
                      **{m: round(sum(r[m] for r in rows) / len(rows), 4) for m in METRICS}}))


if __name__ == "__main__":
    main()
