"""ALDM on CPU: seconds per volume (demo), one public-config UNet evaluation, peak memory.

Figures, each measured in a fresh child process (so its peak RSS is its own) and printed as
one JSON object:

- ``demo_volume``: `synthesize` of one phantom head (its MR at the phantom's own spacing)
  with the demo weights, t1 -> ct and t1 -> t2, default sampler (DDIM 200): seconds per
  volume and peak RSS.
- ``public_unet``: one evaluation of the `public` config's LDM UNet (33.2 M parameters) on a
  full 36x48x36 latent (batch 1, 12 input channels), against the float32 matmul peak of the
  same process (GFLOP/s from torch.utils.flop_counter, fraction of the peak): seconds and
  peak RSS.
- ``sliding_256``: a 256x256x200 MR volume at 1 mm through the demo model at the volume's
  own spacing (no resampling: 48^3 sliding windows, Gaussian blending), with ``--sw-steps``
  DDIM steps per window (memory does not depend on the step count): seconds, windows and
  peak RSS, which must stay under 8 GB.

Run: ``python benchmarks/aldm.py [--weights weights/aldm-demo.safetensors] [--threads 1]
[--figures demo_volume,public_unet,sliding_256] [--sw-steps 5]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _matmul_gflops(n: int = 1024, repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def public_unet() -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from medxlate.models.aldm.nets import build_unet, count
    from medxlate.models.registry import get_spec

    config = get_spec("aldm").config("public")
    unet = build_unet(config).eval()
    x = torch.randn(1, 12, 36, 48, 36)
    t, label = torch.tensor([500]), torch.tensor([1])
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            unet(x, t, class_labels=label)
        flops = counter.get_total_flops()
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            unet(x, t, class_labels=label)
            times.append(time.perf_counter() - t0)
    peak = _matmul_gflops()
    seconds = min(times)
    return {"figure": "public_unet", "params": count(unet), "latent": [36, 48, 36],
            "seconds": round(seconds, 3), "gflop": round(flops / 1e9, 2),
            "gflop_s": round(flops / seconds / 1e9, 2), "matmul_peak_gflop_s": round(peak, 2),
            "fraction_of_peak": round(flops / seconds / 1e9 / peak, 3),
            "peak_rss_mb": round(_peak_mb(), 1)}


def _load(weights: str):
    import torch

    from medxlate.synth.model import load_model

    return load_model("aldm", weights, torch.device("cpu"))


def demo_volume(weights: str) -> dict:
    import torch

    from medxlate.phantom import PhantomConfig, make_subject
    from medxlate.synth.volume import SynthOptions, synthesize_volume

    model = _load(weights)
    subject = make_subject(PhantomConfig(region="brain"), seed=7, index=0)
    mr = subject.mr["t1w"]
    out = {"figure": "demo_volume", "shape": list(mr.shape),
           "spacing_mm": [round(s, 3) for s in mr.spacing]}
    for target in ("ct", "t2"):
        opts = SynthOptions("mri2ct", "ddim", source="t1", target=target)
        t0 = time.perf_counter()
        _, _, info = synthesize_volume(mr, model, opts, torch.Generator().manual_seed(0))
        out[f"seconds_t1_{target}"] = round(time.perf_counter() - t0, 2)
        out["windows"] = info["windows"]
    out["peak_rss_mb"] = round(_peak_mb(), 1)
    return out


def sliding_256(weights: str, steps: int) -> dict:
    import numpy as np
    import torch

    from medxlate.io.volume import Volume
    from medxlate.synth.volume import SynthOptions, synthesize_volume

    model = _load(weights)
    model.meta.data = {**(model.meta.data or {}), "spacing_mm": None}   # work at 1 mm
    shape = (256, 256, 200)
    i, j, k = np.ogrid[:shape[0], :shape[1], :shape[2]]
    body = (((i - 128) / 90.0) ** 2 + ((j - 128) / 110.0) ** 2 + ((k - 100) / 85.0) ** 2) < 1
    array = np.where(body, 400.0 + (i % 37) * 3.0, 0.0).astype(np.float32)
    vol = Volume(array, np.eye(4), "MR")
    opts = SynthOptions("mri2ct", "ddim", steps=steps, source="t1", target="ct")
    t0 = time.perf_counter()
    _, _, info = synthesize_volume(vol, model, opts, torch.Generator().manual_seed(0))
    peak = _peak_mb()
    return {"figure": "sliding_256", "shape": list(shape), "ddim_steps": steps,
            "windows": info["windows"], "box_size": info["box_size"],
            "seconds": round(time.perf_counter() - t0, 1), "peak_rss_mb": round(peak, 1),
            "under_8gb": peak < 8192}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(REPO / "weights" / "aldm-demo.safetensors"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--figures", default="demo_volume,public_unet,sliding_256")
    parser.add_argument("--sw-steps", type=int, default=5)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is None:
        for figure in args.figures.split(","):
            cmd = [sys.executable, __file__, "--child", figure, "--weights", args.weights,
                   "--threads", str(args.threads), "--sw-steps", str(args.sw_steps)]
            subprocess.run(cmd, check=True)
        return
    import torch

    torch.set_num_threads(args.threads)
    if args.child == "public_unet":
        result = public_unet()
    elif args.child == "demo_volume":
        result = demo_volume(args.weights)
    else:
        result = sliding_256(args.weights, args.sw_steps)
    result["threads"] = args.threads
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
