"""Training speed with and without ``augment.profile=any-contrast`` (issue 24: <= 20 % slower).

Alternates short `medxlate train` runs of one config with the profile off and on (same data,
seed, steps; validation and checkpoints out of the way), and times the data loading of the
same samples alone. One JSON object per figure; the ratio is the figure to quote.

    python benchmarks/any_contrast_speed.py --data DS [--model pix2pix] [--steps 30]
        [--repeats 2] [--set slice_size=[128,128] --set n_downs=7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train_seconds(data: str, model: str, steps: int, profile: str, sets: list[str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "medxlate", "train", "--model", model, "--data", data,
               "--out", str(out), "--config", "demo", "--device", "cpu", "--seed", "0",
               "--steps", str(steps), "--set", f"augment.profile={profile}",
               "--set", f"val_every={steps * 10}", "--set", f"checkpoint_every={steps * 10}",
               "--set", f"log_every={steps}", "--quiet"]
        for s in sets:
            cmd += ["--set", s]
        subprocess.run(cmd, check=True, capture_output=True)
        rows = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
        return [r for r in rows if r["kind"] == "train"][-1]["elapsed_s"]


def data_seconds(data: str, n: int, profile: str) -> float:
    from medxlate.preprocess.dataset import Dataset
    from medxlate.train.config import ENGINE_DEFAULTS
    from medxlate.train.data import SliceData

    cfg = {"context": 0, "pairing": "paired", "direction": "mri2ct", "slice_size": None,
           "augment": {**ENGINE_DEFAULTS["augment"], "profile": profile}}
    ds = SliceData(Dataset(data), "train", cfg, augment=True)
    ds[(0, 0, 0)]  # open the shards
    t = time.perf_counter()
    for i in range(n):
        j = i % len(ds)
        ds[(j, j, i)]
    return (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="pix2pix")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()
    for profile in ("none", "any-contrast"):
        ms = 1000 * data_seconds(args.data, args.samples, profile)
        print(json.dumps({"figure": "sample_ms", "profile": profile, "value": round(ms, 2),
                          "samples": args.samples}), flush=True)
    times = {"none": [], "any-contrast": []}
    for _ in range(args.repeats):
        for profile in times:
            times[profile].append(train_seconds(args.data, args.model, args.steps, profile,
                                                args.sets))
    for profile, secs in times.items():
        print(json.dumps({"figure": "train_s_per_step", "profile": profile,
                          "value": round(min(secs) / args.steps, 4),
                          "runs": [round(s, 2) for s in secs], "steps": args.steps}))
    # the fastest run of each is the least disturbed by other jobs on a shared CPU
    ratio = min(times["any-contrast"]) / min(times["none"])
    median = statistics.median(times["any-contrast"]) / statistics.median(times["none"])
    print(json.dumps({"figure": "train_time_ratio", "value": round(ratio, 3),
                      "median_ratio": round(median, 3), "model": args.model,
                      "steps": args.steps, "repeats": args.repeats}))


if __name__ == "__main__":
    main()
