"""Training speed with validation off: this checkout's engine against a reference commit.

Issue 22 added per-step work to the training loop (the NaN/Inf check, the time-budget clock,
the progress line's rate). This measures what it costs: the same runs (model, tiny phantom
dataset, steps, seed) with the engine of ``--ref`` (default ``main``, extracted with
``git archive`` into a temporary folder) and with this checkout, alternated ``--repeats``
times in fresh child processes (so neither warms the other's caches), validation off
(``val_every=0``, ``val_volumes=0`` where the engine knows it, ``val_slices=0``).

Four figures per model, each the median over the repeats of each engine, their ratio
(this / ref) and the slowdown in %: ``train_loop_cpu_s``, the CPU seconds of the training
loop alone (one thread: the least sensitive to other processes on a shared machine; from
building the loader to closing the progress, which both engines do right around the loop)
-- the figure that answers "is training slower"; ``train_cpu_s``, the CPU seconds of the
whole ``train()`` call (setup, the final checkpoint and, in this checkout, the one-off
drawing of curves.png, about 1 s with matplotlib's import); ``train_step_s``, the median wall
seconds per step over train.csv's 10-step windows; ``train_loop_s``, the loop's wall time
(``elapsed_s`` of train.csv's last row, before the final validation and checkpoint).

Run: ``OMP_NUM_THREADS=1 nice -n 10 python benchmarks/train_overhead.py [--ref main]
[--models ddpm,pix2pix] [--steps 300] [--repeats 5] [--time-budget 10h]``
(``--time-budget`` also gives this checkout's runs a budget that never runs out, to time the
budget check itself).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

OVERRIDES = {
    "ddpm": {"slice_size": [16, 16], "model_channels": 16, "channel_mult": [1, 2],
             "num_res_blocks": 1, "attention_resolutions": [8], "head_channels": 8,
             "diffusion_steps": 100, "batch_size": 8},
    "pix2pix": {"ngf": 8, "ndf": 8, "n_downs": 4, "slice_size": [16, 16], "d_layers": 2,
                "batch_size": 8},
}
COMMON = {"val_every": 0, "val_slices": 0, "checkpoint_every": 100000, "log_every": 10,
          "progress": False}

CHILD = """
import json, sys, time
from medxlate.train import engine, runlog
from medxlate.train.engine import train
model, data, out, over, steps, budget = json.loads(sys.argv[1])
kw = {} if budget is None else {"time_budget": budget}
# Both engines build the loader right before the loop and close the progress right after.
loop = {}
make_loader, close = engine._Run._loader, runlog.Progress.close
def loader(run, start):
    loop["start"] = time.process_time()
    return make_loader(run, start)
def closed(progress):
    loop.setdefault("end", time.process_time())
    return close(progress)
engine._Run._loader, runlog.Progress.close = loader, closed
cpu = time.process_time()
train(model, data, out, config="demo", overrides=over, steps=steps, device="cpu", seed=0,
      quiet=True, **kw)
print(json.dumps({"cpu_s": time.process_time() - cpu, "loop_cpu_s": loop["end"] - loop["start"]}))
"""


def _run(code_root: Path, model: str, data: Path, out: Path, over: dict, steps: int,
         budget: str | None) -> dict[str, float]:
    """One run: the loop's wall seconds, the CPU seconds of the whole train() call, and the
    median wall seconds per step over the 10-step log windows (robust to bursts of load)."""
    env = {**os.environ, "PYTHONPATH": str(code_root), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD,
                           json.dumps([model, str(data), str(out), over, steps, budget])],
                          check=True, env=env, cwd=str(code_root), capture_output=True,
                          text=True)
    cpu = json.loads(done.stdout.strip().splitlines()[-1])
    with open(out / "train.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert int(rows[-1]["step"]) == steps
    per_step = statistics.median(1.0 / float(r["it_s"]) for r in rows)
    return {"loop_s": float(rows[-1]["elapsed_s"]), "cpu_s": cpu["cpu_s"],
            "loop_cpu_s": cpu["loop_cpu_s"], "step_s": per_step}


def _dataset(root: Path) -> Path:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cli = [sys.executable, "-m", "medxlate"]
    subprocess.run([*cli, "phantom", "--out", str(root / "cohort"), "--subjects", "4",
                    "--region", "brain", "--size", "24", "24", "20", "--spacing", "4", "4",
                    "4", "--seed", "1"], check=True, env=env, capture_output=True)
    subprocess.run([*cli, "preprocess", "--cohort", str(root / "cohort"), "--out",
                    str(root / "ds"), "--skip", "register", "--set",
                    "steps.resample.spacing_mm=[8,8,8]", "--set", "steps.slices.size=[16,16]",
                    "--set", "steps.crop.margin_mm=8", "--set",
                    "split.fractions=[0.5,0.5,0.0]"], check=True, env=env, capture_output=True)
    return root / "ds"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="main")
    ap.add_argument("--models", default="ddpm,pix2pix")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--time-budget", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="train-overhead-") as tmp:
        tmp = Path(tmp)
        ref_root = tmp / "ref"
        ref_root.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.ref, "medxlate"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(ref_root)], input=archive, check=True)
        sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.ref],
                             check=True, capture_output=True, text=True).stdout.strip()
        data = _dataset(tmp)
        for model in args.models.split(","):
            over = {**OVERRIDES[model], **COMMON}
            new_over = {**over, "val_volumes": 0}
            runs: dict[str, list[dict[str, float]]] = {"ref": [], "this": []}
            for i in range(args.repeats):
                runs["ref"].append(_run(ref_root, model, data, tmp / f"{model}-ref-{i}",
                                        over, args.steps, None))
                runs["this"].append(_run(REPO, model, data, tmp / f"{model}-this-{i}",
                                         new_over, args.steps, args.time_budget))
            for measure in ("loop_cpu_s", "cpu_s", "step_s", "loop_s"):
                ref = statistics.median(r[measure] for r in runs["ref"])
                this = statistics.median(r[measure] for r in runs["this"])
                print(json.dumps({"figure": f"train_{measure}", "model": model,
                                  "steps": args.steps, "repeats": args.repeats,
                                  "ref": f"{args.ref} ({sha})", "ref_median": round(ref, 4),
                                  "this_median": round(this, 4),
                                  "time_budget": args.time_budget,
                                  "ratio": round(this / ref, 4),
                                  "slowdown_pct": round(100 * (this / ref - 1), 2),
                                  "ref_all": [round(r[measure], 4) for r in runs["ref"]],
                                  "this_all": [round(r[measure], 4) for r in runs["this"]],
                                  "device": "cpu, OMP_NUM_THREADS=1"}), flush=True)


if __name__ == "__main__":
    main()
