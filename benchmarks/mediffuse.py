"""Mediffuse speed on CPU: seconds per slice at the 64x64 demo size (full samplers, guidance
included), one paper-size (512x512 image, 64x64 latent) Stable Diffusion 1.5 U-Net evaluation,
its GFLOP, and the fraction of the machine's float32 matmul peak, all measured in one run.

    OMP_NUM_THREADS=1 python benchmarks/mediffuse.py --threads 1

The peak reference is a 2048^3 float32 matmul timed in the same process (best of 3). GFLOP
counts torch's FlopCounterMode over the U-Net forward (2 FLOP per multiply-add of
convolutions, linear layers and attention matmuls). Weights are random: speed does not depend
on them. Prints one JSON object per figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def matmul_peak(n: int = 2048, repeats: int = 3) -> float:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from cpu_peak import matmul_gflops

    return matmul_gflops((n,), repeats)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def demo_seconds_per_slice(name: str, batch: int) -> dict:
    import torch

    from medxlate.models.registry import get_spec

    spec = get_spec(name)
    cfg = spec.config("demo")
    family = spec.load_entry()
    torch.manual_seed(0)
    nets = {k: v.eval() for k, v in family.build(cfg).items()}
    src = torch.rand(batch, 1, *cfg["slice_size"]) * 2 - 1
    seconds = _timed(lambda: family.translate(nets, src, config=cfg, sampler="ddim",
                                              generator=torch.Generator().manual_seed(0)))
    unet_passes = 3 if name == "mediffuse-ip2p" else 2   # guidance branches per step
    return {"figure": "demo_seconds_per_slice", "model": name, "size": cfg["slice_size"],
            "steps": cfg["inference_steps"], "guided_branches": unet_passes, "batch": batch,
            "seconds_per_slice": round(seconds / batch, 4)}


def paper_unet(in_channels: int, peak: float) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from medxlate.models.mediffuse import SD15_UNET
    from medxlate.models.mediffuse.libs import sd

    torch.manual_seed(0)
    unet = sd().UNet2DConditionModel(**{**SD15_UNET, "in_channels": in_channels}).eval()
    params = sum(p.numel() for p in unet.parameters())
    x = torch.randn(1, in_channels, 64, 64)
    text = torch.randn(1, 77, 768)
    t = torch.tensor([500])
    with torch.no_grad():
        counter = FlopCounterMode(display=False)
        with counter:
            unet(x, t, text)                      # also the warm-up
        seconds = _timed(lambda: unet(x, t, text))
    gflop = counter.get_total_flops() / 1e9
    return {"figure": "paper_unet_eval", "image": [512, 512], "latent": [64, 64],
            "in_channels": in_channels, "parameters_m": round(params / 1e6, 1),
            "seconds": round(seconds, 2), "gflop": round(gflop, 1),
            "gflop_per_s": round(gflop / seconds, 1), "matmul_peak_gflop_per_s": round(peak, 1),
            "fraction_of_peak": round(gflop / seconds / peak, 3)}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8, help="demo slices per call")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = matmul_peak()
    print(json.dumps({"figure": "matmul_peak", "threads": args.threads,
                      "gflop_per_s": round(peak, 1)}))
    for name in ("mediffuse-ip2p", "mediffuse-controlnet"):
        print(json.dumps(demo_seconds_per_slice(name, args.batch)), flush=True)
    print(json.dumps(paper_unet(8, peak)), flush=True)
    peak_after = matmul_peak()
    print(json.dumps({"figure": "matmul_peak_after", "threads": args.threads,
                      "gflop_per_s": round(peak_after, 1)}))


if __name__ == "__main__":
    main()
