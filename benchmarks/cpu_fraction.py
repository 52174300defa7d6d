"""CPU fraction of the matmul peak for pix2pix, the ddpm demo and SynDiff, and channels_last.

For each network, per batch size: the FLOPs of one network call (torch.utils.flop_counter),
the best process CPU seconds (and wall seconds) of that call with contiguous (NCHW) tensors
and with channels_last (NHWC: weights and input converted, as synthesize would), run
interleaved A B, B A, ... in this process (with one thread, CPU time does not count the
time other processes held the core), and the float32 matmul peak of this machine for the
threads in use, in CPU time too, re-measured before each batch size (the largest value is
used). Printed, one JSON object
per figure: GFLOP/s and the fraction of the peak for both layouts, the ratio
``channels_last_s / contiguous_s`` (below 1: channels_last is faster) and the max |difference|
of the two outputs.

Networks (shipped demo weights, at the size synthesize runs them; ``--paper`` adds SynDiff's
paper-config generator at 256x256 with random weights):

- ``pix2pix``: one generator pass (the demo's U-Net, whole 128x128 slices).
- ``ddpm``: one denoiser evaluation of the demo U-Net at 64x64 (a synthesis runs hundreds).
- ``syndiff``: one generator evaluation of the demo NCSN++ at 64x64 (a synthesis runs 4).
  NCSN++ converts itself to channels_last, so both of its columns run the same code: its
  ratio is this run's A/A control (how far from 1.0 noise alone moves a ratio).

Run: ``OMP_NUM_THREADS=1 python benchmarks/cpu_fraction.py [--threads 1] [--repeats 3]
[--batches 1,8] [--paper]``. The machine is shared: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_peak import matmul_gflops


def matmul_peak(repeats: int = 3) -> float:
    """Best float32 GFLOP/s (per CPU second) of square matmuls: the practical peak."""
    return matmul_gflops((1024, 2048), repeats, time.process_time)


def count_flops(fn, *args) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return int(counter.get_total_flops())


def networks(paper: bool):
    """(name, module, size, make_args) for every network measured."""
    from medxlate.synth.model import load_model

    cpu = torch.device("cpu")
    p2p = load_model("pix2pix", None, cpu)
    ddpm = load_model("ddpm", None, cpu)
    syn = load_model("syndiff", None, cpu)
    out = [("pix2pix", p2p.nets["G"], 128, lambda x, g: (x,)),
           ("ddpm", ddpm.nets["unet"], 64,
            lambda x, g: (x, torch.randint(0, 1000, (x.shape[0],), generator=g), x.clone())),
           ("syndiff", syn.nets["G_mr2ct"], 64,
            lambda x, g: (torch.cat([x, x], 1), torch.randint(0, 4, (x.shape[0],), generator=g),
                          torch.randn(x.shape[0], syn.nets["G_mr2ct"].cfg.nz, generator=g)))]
    if paper:
        from medxlate.models.nets.ncsnpp import NCSNpp, NCSNppConfig

        torch.manual_seed(0)
        g = NCSNpp(NCSNppConfig(image_size=256)).eval()
        with torch.no_grad():  # no ~zero-initialised layer: every branch does real work
            for p in g.parameters():
                p.copy_(torch.randn_like(p) / math.sqrt(max(1, p[0].numel())))
        out.append(("syndiff-paper", g, 256, lambda x, gen: (
            torch.cat([x, x], 1), torch.randint(0, 4, (x.shape[0],), generator=gen),
            torch.randn(x.shape[0], g.cfg.nz, generator=gen))))
    return out


def to_channels_last(args):
    return tuple(a.contiguous(memory_format=torch.channels_last) if a.dim() == 4 else a
                 for a in args)


def measure(name, net, size, make_args, batch, repeats, peak) -> dict:
    gen = torch.Generator().manual_seed(batch)
    args = make_args(torch.randn(batch, 1, size, size, generator=gen), gen)
    net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
    args_cl = to_channels_last(args)
    with torch.inference_mode():
        flop = count_flops(net, *args)
        fns = [(net, args), (net_cl, args_cl)]
        outs = [fn(*a) for fn, a in fns]  # warm-up (oneDNN primitives, allocator)
        wall, cpu = [math.inf, math.inf], [math.inf, math.inf]
        for r in range(repeats):  # A B, B A, ...: neither layout always runs first
            for i in ((0, 1) if r % 2 == 0 else (1, 0)):
                fn, a = fns[i]
                t0, c0 = time.perf_counter(), time.process_time()
                fn(*a)
                wall[i] = min(wall[i], time.perf_counter() - t0)
                cpu[i] = min(cpu[i], time.process_time() - c0)
    gf = [flop / s / 1e9 for s in cpu]
    return {"figure": "network_call", "model": name, "size": size, "batch": batch,
            "threads": torch.get_num_threads(), "repeats": repeats,
            "gflop_per_call": round(flop / 1e9, 3),
            "contiguous_cpu_s": round(cpu[0], 4), "channels_last_cpu_s": round(cpu[1], 4),
            "channels_last_ratio": round(cpu[1] / cpu[0], 3),
            "contiguous_wall_s": round(wall[0], 4), "channels_last_wall_s": round(wall[1], 4),
            "channels_last_wall_ratio": round(wall[1] / wall[0], 3),
            "contiguous_gflops": round(gf[0], 1), "channels_last_gflops": round(gf[1], 1),
            "peak_gflops": round(peak, 1), "contiguous_frac_of_peak": round(gf[0] / peak, 3),
            "channels_last_frac_of_peak": round(gf[1] / peak, 3),
            "max_abs_diff": float((outs[0].float() - outs[1].float()).abs().max())}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--models", default="pix2pix,ddpm,syndiff,syndiff-paper")
    ap.add_argument("--paper", action="store_true", help="add the 256x256 SynDiff generator")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    wanted = set(args.models.split(","))
    peak = matmul_peak()
    print(json.dumps({"figure": "matmul_peak", "threads": args.threads,
                      "gflops": round(peak, 1)}), flush=True)
    for name, net, size, make_args in networks(args.paper):
        if name not in wanted:
            continue
        for batch in (int(b) for b in args.batches.split(",")):
            peak = max(peak, matmul_peak(1))  # re-measured: the machine's load changes
            print(json.dumps(measure(name, net, size, make_args, batch, args.repeats, peak)),
                  flush=True)


if __name__ == "__main__":
    main()
