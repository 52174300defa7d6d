"""unet-2.5d on real data: the mridir-subset specimen (real CT and T2 MR), half/half.

../shared/data/mridir-subset holds one porcine specimen: 12 T2 MR slices and 32 CT slices,
turned over between the scans. The steps, all through medxlate's own commands:

1. `medxlate preprocess` registers the CT onto the MR (its 180-degree search finds the flip)
   and resamples both to 2 mm (the shipped unet-2.5d's plan spacing), with a body mask that
   keeps only MR body voxels the CT covers.
2. The slices holding mask voxels are cut into two contiguous halves along the axial axis
   with ``--gap`` slices left out between them (medxlate.bench.slice_halves: first half
   longer by one when odd; gap 2 = the model's 2.5D context k = 2 at 2 mm). Each half is
   written as its own volume (MR, CT, mask), so training never reads a scored slice.
3. Fold ``first->second``: train on the first half, score the second; fold ``second->first``
   the reverse. Per fold: `medxlate preprocess --skip register` of the training half,
   `medxlate train --model unet-2.5d --set init_weights=<shipped>` for ``--steps`` steps,
   `medxlate synthesize` of the scored half's MR, scored with `medxlate evaluate`'s metrics
   (MAE, ME, PSNR, per-tissue MAE) inside its mask.
4. Rows per fold, beside the same scored half: the shipped unet-2.5d without fine-tuning
   (trained on T1 phantoms; this MR is T2), the constant guess (median HU of the training
   half's body) and the best voxel-wise intensity map (128 bins of normalised MR -> median
   HU, fitted on the training half; medxlate.bench.references). One more row scores the
   fine-tuned weights on their own training half (in-sample: how well they fit what they saw).

Prints one JSON object per fold and row, then one summary object.

    nice -n 5 env OMP_NUM_THREADS=1 python benchmarks/unet_mridir.py --workdir scratch/mridir
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MRIDIR = ROOT.parent / "shared" / "data" / "mridir-subset"
SHIPPED = ROOT / "weights" / "unet-2.5d-demo.safetensors"
GRID = ["--set", "steps.resample.spacing_mm=[2,2,2]", "--set", "steps.slices.size=[128,128]",
        "--skip", "contours", "--seed", "0", "-q"]
BINS = 128
METRICS = ("mae", "me", "psnr", "mae_air", "mae_soft_tissue", "mae_bone")


def medxlate(*args) -> float:
    """Run one `medxlate` command (this Python), stop on failure; returns its wall seconds."""
    cmd = [sys.executable, "-m", "medxlate", *map(str, args)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - start


def evaluate(pred: Path, half: Path) -> dict:
    """`medxlate evaluate`'s point metrics inside the half's mask (its SSIM needs 7 slices;
    a scored half has 4-5, so SSIM is left out)."""
    from medxlate.evaluate.metrics import MetricConfig, point_metrics
    from medxlate.io.readers import read_volume

    ref = read_volume(half / "ct.nii.gz", modality="CT").array
    mask = read_volume(half / "mask.nii.gz").array > 0
    found = point_metrics(read_volume(pred, modality="CT").array, ref, mask, MetricConfig())
    return {"voxels": int(mask.sum()),
            **{m: round(found[m], 2) for m in METRICS if m in found}}


def write_halves(pair: Path, fold: Path, train: range, test: range) -> None:
    from medxlate.bench.slice_halves import slab
    from medxlate.io.readers import read_volume, write_volume

    for name, part in (("train", train), ("test", test)):
        for key, modality in (("mr", "MR"), ("ct", "CT"), ("mask", "unknown")):
            vol = read_volume(pair / f"{key}.nii.gz", modality=modality)
            write_volume(slab(vol, part), fold / name / f"{key}.nii.gz", overwrite=True)


def references(dataset: Path, test: Path, out: Path) -> dict[str, tuple[Path, str]]:
    """Constant guess and intensity map fitted on the training half, predicted on ``test``."""
    from medxlate.bench import references as R
    from medxlate.io.readers import write_volume
    from medxlate.preprocess.dataset import load_dataset

    x, hu = R.training_voxels(dataset, "mr->ct")
    constant, imap = float(np.median(hu)), R.fit_map(x, hu, BINS)
    vol, xt = R.normalised_input(test / "mr.nii.gz", "mr->ct",
                                 load_dataset(dataset).info["normalisation"])
    preds = {"constant": (np.full(vol.shape, constant, np.float32),
                          f"median training-half body HU ({constant:.1f} HU, "
                          f"{x.size} voxels)"),
             "intensity map": (imap.apply(xt), f"median HU per bin of normalised MR "
                               f"({BINS} bins, fitted on {x.size} training-half voxels)")}
    paths = {}
    for name, (array, what) in preds.items():
        path = out / f"{name.replace(' ', '_')}.nii.gz"
        write_volume(vol.with_array(array, modality="CT"), path, overwrite=True)
        paths[name] = (path, what)
    return paths


def stale_settings(config: dict, args) -> str:
    """What of this command's training settings the run in ``config`` was not trained with."""
    wanted = {"steps": args.steps, "init_weights": str(args.init.resolve())}
    for kv in args.train_set:
        key, _, value = kv.partition("=")
        try:
            wanted[key] = json.loads(value)
        except json.JSONDecodeError:
            wanted[key] = value
    found = {}
    for key in wanted:
        node = config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        found[key] = node
    return ", ".join(f"{k}={found[k]!r}, not {v!r}" for k, v in wanted.items() if found[k] != v)


def run_fold(label: str, pair: Path, fold: Path, train: range, test: range, args) -> list:
    write_halves(pair, fold, train, test)
    half = fold / "train"
    dataset, run, out = fold / "dataset", fold / "run", fold / "pred"
    out.mkdir(parents=True, exist_ok=True)
    medxlate("preprocess", "--mri", half / "mr.nii.gz", "--ct", half / "ct.nii.gz", "--mask",
             half / "mask.nii.gz", "--id", "train-half", "-o", dataset, "--skip", "register",
             "--set", "split.fractions=[1.0,0.0,0.0]", "--overwrite", *GRID)
    if (run / "config.json").is_file():
        stale = stale_settings(json.loads((run / "config.json").read_text()), args)
        if stale:
            sys.exit(f"{run} was trained with other settings ({stale}); use another --workdir")
    if not (run / "model.safetensors").is_file():
        medxlate("train", "--model", "unet-2.5d", "--data", dataset, "--out", run, "--config",
                 "demo", "--device", "cpu", "--seed", "0", "--steps", args.steps,
                 "--set", f"init_weights={args.init.resolve()}", "--set",
                 f"checkpoint_every={args.steps}", "--val-every", "0",
                 *[a for kv in args.train_set for a in ("--set", kv)])
    log = [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines() if ln.strip()]
    seconds = [r["elapsed_s"] for r in log if r.get("kind") == "train"]
    rows = []
    common = {"fold": label, "train_slices": [train.start, train.stop - 1],
              "test_slices": [test.start, test.stop - 1], "gap": args.gap}
    for name, (path, what) in references(dataset, fold / "test", out).items():
        rows.append({**common, "row": name, "what": what, **evaluate(path, fold / "test")})
    tuned = (f"from the shipped weights, {args.steps} steps on the training half"
             f"{' (' + ', '.join(args.train_set) + ')' if args.train_set else ''} "
             f"({seconds[-1]:.0f} s of training, the engine's clock)")
    for name, weights, half, note in (
            ("unet-2.5d shipped (zero-shot)", None, "test", "weights/unet-2.5d-demo.safetensors, "
             "shipped weights (T1w phantoms and real-anatomy heads), no fine-tuning"),
            ("unet-2.5d fine-tuned", run / "model.safetensors", "test", tuned),
            # not a result: how well the same weights fit the slices they were trained on
            ("unet-2.5d fine-tuned, own training half (in-sample)", run / "model.safetensors",
             "train", tuned)):
        sct = out / f"{'zero_shot' if weights is None else 'fine_tuned'}_{half}.nii.gz"
        extra = [] if weights is None else ["--weights", weights]
        wall = medxlate("synthesize", "--model", "unet-2.5d", "--in", fold / half / "mr.nii.gz",
                        "--out", sct, "--overwrite", "--seed", "0", "--quiet", *extra)
        rows.append({**common, "row": name, "what": note, "synthesize_s": round(wall, 1),
                     **evaluate(sct, fold / half)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=MRIDIR)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--gap", type=int, default=2, help="slices left out between the halves")
    ap.add_argument("--init", type=Path, default=SHIPPED)
    ap.add_argument("--train-set", action="append", default=[], metavar="KEY=VALUE",
                    help="another `medxlate train --set` (repeatable), e.g. lr=0.0002")
    ap.add_argument("--folds", choices=["both", "first->second", "second->first"],
                    default="both")
    args = ap.parse_args()
    if not args.data.is_dir():
        sys.exit(f"mridir-subset not found at {args.data}")
    from medxlate.bench.slice_halves import halves, scored_range
    from medxlate.io.readers import read_volume

    start = time.process_time()
    pair_ds = args.workdir / "pair"
    medxlate("preprocess", "--mri", args.data / "mr_t2", "--ct", args.data / "ct", "--id", "pig",
             "-o", pair_ds, *GRID)
    pair = pair_ds / "subjects" / "pig"
    mask = read_volume(pair / "mask.nii.gz").array > 0
    lo, hi = scored_range(mask)
    first, second = halves(lo, hi, args.gap)
    reg = json.loads((pair / "subject.json").read_text())["registration"]
    print(json.dumps({"pair": str(pair), "shape": list(mask.shape), "scored_slices": [lo, hi - 1],
                      "first": [first.start, first.stop - 1],
                      "second": [second.start, second.stop - 1],
                      "body_voxels": {"first": int(mask[:, :, first.start:first.stop].sum()),
                                      "second": int(mask[:, :, second.start:second.stop].sum())},
                      "registration": {"init": reg["init_search"]["best"],
                                       "rotation_deg": reg["rigid"]["rotation_deg"],
                                       "mi_identity": reg["mi_identity"],
                                       "mi_final": reg["mi_final"]}}))
    folds = {"first->second": (first, second), "second->first": (second, first)}
    rows = []
    for label, (train, test) in folds.items():
        if args.folds in ("both", label):
            slug = label.replace("->", "_to_")
            for row in run_fold(label, pair, args.workdir / slug, train, test, args):
                print(json.dumps(row))
                rows.append(row)
    summary = {}
    for name in dict.fromkeys(r["row"] for r in rows):
        summary[name] = round(float(np.mean([r["mae"] for r in rows if r["row"] == name])), 2)
    print(json.dumps({"mean_mae_hu_over_folds": summary, "steps": args.steps,
                      "train_set": args.train_set,
                      "cpu_s": round(time.process_time() - start + _children_cpu(), 1)}))


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished medxlate commands this script ran."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
