"""Wall and CPU time of `medxlate bench --spec small` from scratch (docs/bench.md promises
under 10 CPU minutes), with its rows' MAE; prints one JSON object.

    OMP_NUM_THREADS=1 python benchmarks/bench_small.py --workdir /tmp/bench-small

The work folder must not exist (a resumed run would time nothing). The load average at the
start and the end is printed too: on a shared machine the wall time says little, CPU time more.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--spec", default="small")
    args = parser.parse_args()
    if args.workdir.exists():
        sys.exit(f"{args.workdir} exists; give a new folder")
    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(["medxlate", "bench", "--spec", args.spec, "--workdir",
                           str(args.workdir)], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"medxlate bench failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    result = json.loads((args.workdir / "bench.json").read_text())
    print(json.dumps({"spec": args.spec, "wall_s": round(wall, 1),
                      "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
                      "threads": os.environ.get("OMP_NUM_THREADS", "default"),
                      "load_avg_start": round(load0, 2),
                      "load_avg_end": round(os.getloadavg()[0], 2),
                      "rows": {r["label"]: round(r["metrics"]["mae"], 1)
                               for r in result["rows"] + result["references"]}}))


if __name__ == "__main__":
    main()
