"""Time spent around the model in `synthesize`: pipeline seconds per volume vs generator.

For a randomly initialised pix2pix of the given config (geometry and timing need no trained
weights) and a phantom MR volume, runs the full per-volume pipeline (body mask, resampling to
the training spacing, normalisation, slicing and padding, batched generator calls, inverse
normalisation, blending, resampling back) and prints one JSON object per batch size with the
total seconds, the seconds spent inside ``family.translate`` (measured in the same run), and
their ratio (1.0 = no overhead).

Run: ``python benchmarks/synth_pipeline.py [--config demo] [--shape 256 256 48]
[--spacing 1.0 1.0 2.5] [--batch-sizes 1 8 32] [--threads 2]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from medxlate.io.volume import Volume
from medxlate.models.registry import get_spec
from medxlate.intensity import DEFAULT_NORMALISATION
from medxlate.synth.model import load_model
from medxlate.synth.volume import SynthOptions, synthesize_volume
from medxlate.weights import CheckpointMeta, save_checkpoint


def phantom(shape, spacing) -> Volume:
    """An ellipsoid 'head' (MR ~400) with a bright inner ellipsoid, plus noise."""
    rng = np.random.default_rng(0)
    g = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in shape], indexing="ij")
    r = g[0] ** 2 / 0.7 + g[1] ** 2 / 0.8 + g[2] ** 2 / 1.2
    a = np.where(r < 1, 400.0, 0.0) + np.where(r < 0.3, 500.0, 0.0)
    a = a + np.where(r < 1, rng.normal(0, 15, shape), 0)
    return Volume(a.astype(np.float32), np.diag([*spacing, 1.0]), "MR")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="demo")
    ap.add_argument("--shape", type=int, nargs=3, default=[256, 256, 48])
    ap.add_argument("--spacing", type=float, nargs=3, default=[1.0, 1.0, 2.5])
    ap.add_argument("--train-spacing", type=float, nargs=3, default=[1.0, 1.0, 2.5])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    spec = get_spec("pix2pix")
    cfg = spec.config(args.config)
    family = spec.load_entry()
    torch.manual_seed(0)
    nets = family.build(cfg)
    tensors = {f"G.{k}": v for k, v in nets["G"].state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p2p.safetensors"
        save_checkpoint(path, tensors, CheckpointMeta(
            "pix2pix", cfg, DEFAULT_NORMALISATION,
            {"spacing_mm": args.train_spacing, "slice_axis": 2}))
        model = load_model("pix2pix", path, torch.device("cpu"))

    inner = {"s": 0.0}
    translate = family.translate

    def timed(*a, **k):
        t = time.perf_counter()
        out = translate(*a, **k)
        inner["s"] += time.perf_counter() - t
        return out

    model.family = type("Timed", (), {"translate": staticmethod(timed)})()
    vol = phantom(tuple(args.shape), tuple(args.spacing))
    for bs in args.batch_sizes:
        inner["s"] = 0.0
        opts = SynthOptions("mri2ct", "one-shot", batch_size=bs)
        t0 = time.perf_counter()
        _, _, info = synthesize_volume(vol, model, opts, torch.Generator().manual_seed(0))
        total = time.perf_counter() - t0
        print(json.dumps({
            "figure": "synthesize seconds per volume vs generator seconds",
            "model": "pix2pix", "config": args.config, "slice_size": cfg["slice_size"],
            "volume_shape": args.shape, "working_shape": info["working_shape"],
            "tiles": info["tiles"], "batch_size": bs, "threads": args.threads,
            "seconds_total": round(total, 3), "seconds_generator": round(inner["s"], 3),
            "ratio_total_to_generator": round(total / max(inner["s"], 1e-9), 3)}))


if __name__ == "__main__":
    main()
