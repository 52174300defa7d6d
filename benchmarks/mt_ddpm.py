"""MT-DDPM paper-config cost on this machine: parameters, GFLOP and seconds per network
evaluation at 256x256 (batch 1 and 8), the fraction of this machine's float32 matmul peak
measured in the same run, and seconds per slice for respaced-500, ddim-50 and dpmpp-2m-20.

The paper (Pan et al. 2023) quotes 220 s per 256x256 image for its 500 sampling steps (on
its GPU). Times are CPU seconds of this process divided by its threads (the wall time is
printed too): on a shared machine that is the time the work takes with the cores to itself,
and the matmul peak is measured the same way in the same run. On a CPU a full 500-step chain at 256x256 takes long, so the per-slice figures are
``steps x seconds per evaluation`` at batch 1 (each sampler makes exactly one network call
per step; the diffusion maths per step is measured separately and added): they are labelled
``extrapolated`` in the output. ``--chain`` instead runs the real samplers end to end with
``--chain-steps`` steps each and reports the measured seconds per step too.

Run: ``OMP_NUM_THREADS=2 python benchmarks/mt_ddpm.py --threads 2 [--repeats 2] [--chain]``
Prints one JSON object per figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_peak import matmul_gflops


def matmul_peak(repeats: int = 3) -> float:
    """Best float32 GFLOP/s of square matmuls (1024-3072) per second of this process's CPU
    time: the machine's practical peak for the threads we get."""
    return matmul_gflops(repeats=repeats, clock=time.process_time) * torch.get_num_threads()


def count_flops(net, *args) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        net(*args)
    return int(counter.get_total_flops())


def best_seconds(fn, repeats: int) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds / threads) over ``repeats`` calls after a warm-up.
    On a shared machine the CPU time per thread is the time the work would take with the
    cores to itself; the wall time includes waiting for them."""
    fn()                                     # warm-up: allocator, oneDNN primitives
    wall = cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, (time.process_time() - c0) / torch.get_num_threads())
    return wall, cpu


def build(config_name: str):
    from medxlate.models.registry import get_spec
    from medxlate.train.config import resolve_config

    spec = get_spec("mt-ddpm")
    cfg = resolve_config(spec, config_name)
    net = spec.load_entry().build(cfg)["net"].eval()
    return spec, cfg, net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--config", default="paper")
    parser.add_argument("--chain", action="store_true",
                        help="also run each sampler for --chain-steps real steps")
    parser.add_argument("--chain-steps", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    spec, cfg, net = build(args.config)
    size = int(cfg["slice_size"][0])
    params = sum(p.numel() for p in net.parameters())
    print(json.dumps({"figure": "parameters", "config": args.config, "params": params,
                      "params_m": round(params / 1e6, 2),
                      "paper_params": "not stated in the paper's text"}))
    peak = matmul_peak()
    print(json.dumps({"figure": "matmul_peak", "threads": args.threads,
                      "gflops": round(peak, 1)}))
    per_eval = {}
    with torch.no_grad():
        for batch in (1, 8):
            x = torch.randn(batch, 1, size, size)
            cond = torch.randn(batch, 1, size, size)
            t = torch.randint(0, 4000, (batch,))
            flop = count_flops(net, x, t, cond)
            wall, seconds = best_seconds(lambda x=x, t=t, c=cond: net(x, t, c), args.repeats)
            per_eval[batch] = seconds
            peak = max(peak, matmul_peak(1))     # re-measured: the machine's load changes
            print(json.dumps({
                "figure": "network_eval", "batch": batch, "size": size,
                "gflop": round(flop / 1e9, 2), "gflop_per_slice": round(flop / 1e9 / batch, 2),
                "cpu_seconds": round(seconds, 3), "wall_seconds": round(wall, 3),
                "cpu_seconds_per_slice": round(seconds / batch, 3),
                "gflops": round(flop / seconds / 1e9, 1), "peak_gflops": round(peak, 1),
                "frac_of_peak": round(flop / seconds / 1e9 / peak, 3)}), flush=True)
    samplers = {"respaced-500": ("respaced", 500), "ddim-50": ("ddim", 50),
                "dpmpp-2m-20": ("dpmpp-2m", 20)}
    family = spec.load_entry()
    nets = {"net": net}
    for label, (name, steps) in samplers.items():
        record = {"figure": "seconds_per_slice", "sampler": label, "batch": 1,
                  "extrapolated_s_per_slice": round(steps * per_eval[1], 1),
                  "basis": f"{steps} steps x {per_eval[1]:.3f} CPU s per batch-1 evaluation",
                  "paper_s_per_slice_500_steps": 220}
        if args.chain:
            src = torch.randn(1, 1, size, size)
            k = min(args.chain_steps, steps)
            c0 = time.process_time()
            family.translate(nets, src, config=cfg, sampler=name, steps=k, eta=0.0,
                             generator=torch.Generator().manual_seed(0))
            per_step = (time.process_time() - c0) / torch.get_num_threads() / k
            record.update(chain_steps=k, measured_s_per_step=round(per_step, 3),
                          chain_extrapolated_s_per_slice=round(per_step * steps, 1))
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
