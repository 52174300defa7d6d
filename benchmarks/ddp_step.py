"""Training step time on 2 gloo processes: DistributedDataParallel vs the step all-reduce.

Spawns ``--procs`` CPU processes (a gloo group over a FileStore) that run the engine's
own pieces — the family's ``training_step`` with a StepContext — for the ddpm config on
random slices: once with the U-Net behind DDP (gradients reduced in buckets during
backward, :mod:`medxlate.train.ddp`), once with ``average_gradients`` at ``ctx.step``
(the GAN families' path). Both start from identical weights and batches. Prints one JSON
object per path (median step seconds over ``--steps`` after ``--warmup``), then one with
their ratio and the largest weight difference between the two paths after the same steps
(the same update, so only float summation order may differ).

Run: ``OMP_NUM_THREADS=1 python benchmarks/ddp_step.py [--config demo] [--batch 8]
[--steps 10] [--procs 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time


def worker(rank: int, args, folder: str) -> None:
    import torch
    import torch.distributed as dist

    from medxlate.models.registry import get_spec
    from medxlate.train import ddp
    from medxlate.train.context import StepContext
    from medxlate.train.distributed import World, broadcast_state, seed_everything

    torch.set_num_threads(args.threads)
    store = dist.FileStore(os.path.join(folder, "store"), args.procs)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=args.procs)
    world = World(rank, args.procs, rank)
    device = torch.device("cpu")
    spec = get_spec(args.model)
    cfg = {**spec.config(args.config), "direction": "mri2ct", "context": 0}
    family = spec.load_entry()
    size = cfg["slice_size"]
    results, finals = {}, {}
    for path in ("ddp", "allreduce"):
        seed_everything(0)
        nets = family.build(cfg)
        broadcast_state(nets, world)
        opts = family.optimizers(nets, cfg)
        ctx = StepContext(opts, device, torch.Generator(), 1, cfg.get("grad_clip", 1.0),
                          None, world)
        names = ddp.choose("auto" if path == "ddp" else "allreduce", family, nets, opts, world)
        step_nets = ddp.wrap(nets, names, device) if names else nets
        if names:
            ctx.synced = set(opts)
        times = []
        for step in range(args.warmup + args.steps):
            seed_everything(0, rank, step + 1)
            ctx.generator.manual_seed(step * 97 + rank)
            ctx.step_index, ctx.stepped = step, set()
            batch = {m: torch.rand(args.batch, 1, *size) * 2 - 1 for m in ("mr", "ct")}
            t0 = time.perf_counter()
            family.training_step(step_nets, batch, ctx, cfg)
            if step >= args.warmup:
                times.append(time.perf_counter() - t0)
        results[path] = statistics.median(times)
        finals[path] = {k: v.detach().clone() for k, v in nets[next(iter(nets))]
                        .state_dict().items()}
        dist.barrier()
    if rank == 0:
        diff = max(float((finals["ddp"][k] - finals["allreduce"][k]).abs().max())
                   for k in finals["ddp"])
        common = {"model": args.model, "config": args.config, "procs": args.procs,
                  "backend": "gloo", "batch_per_rank": args.batch, "threads": args.threads,
                  "slice_size": size}
        for path in ("ddp", "allreduce"):
            print(json.dumps({"figure": "train_step_seconds", "path": path, **common,
                              "median_step_s": round(results[path], 4)}), flush=True)
        print(json.dumps({"figure": "ddp_over_allreduce_step_time", **common,
                          "ratio": round(results["ddp"] / results["allreduce"], 3),
                          "max_weight_difference": diff}), flush=True)
    dist.destroy_process_group()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ddpm")
    ap.add_argument("--config", default="demo")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as folder:
        mp.spawn(worker, args=(args, folder), nprocs=args.procs, join=True)


if __name__ == "__main__":
    main()
