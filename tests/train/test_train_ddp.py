"""Two CPU processes (gloo) under torchrun train a few steps: same checkpoint format."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from conftest import TINY_DDPM

from medxlate.weights import load_checkpoint


def test_two_process_gloo_training(tiny_dataset, tmp_path):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    medxlate = shutil.which("medxlate") or str(Path(sys.executable).parent / "medxlate")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({"base": "demo", **TINY_DDPM, "batch_size": 2}))
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", "--no-python", medxlate, "train",
         "--model", "ddpm", "--data", str(tiny_dataset), "--out", str(out), "--config",
         str(config), "--steps", "3", "--device", "cpu"],
        check=False, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("trained ddpm for 3 steps") == 1      # only rank 0 reports
    tensors, meta = load_checkpoint(out / "model.safetensors")
    assert meta.extra["hardware"]["world_size"] == 2 and meta.extra["steps"] == 3
    assert meta.config["batch_size"] == 2
    # the same tensor names and shapes as a single-process model
    from medxlate.models.registry import get_spec
    single = get_spec("ddpm").load_entry().build(meta.config)["unet"].state_dict()
    assert {k: tuple(v.shape) for k, v in tensors.items()} == {
        f"unet.{k}": tuple(v.shape) for k, v in single.items()}
    state = json.loads((out / "checkpoints" / "step-00000003" / "state.json").read_text())
    assert state["world_size"] == 2 and state["step"] == 3
    rows = (out / "train.csv").read_text().splitlines()
    assert len(rows) == 4                                           # header + 3 steps, once
    assert all(torch.isfinite(v).all() for v in tensors.values())


def test_gradients_are_averaged_across_ranks(tmp_path):
    """average_gradients == the mean of the ranks' gradients (spawned gloo group)."""
    import torch.multiprocessing as mp

    world = 2
    mp.spawn(_average_worker, args=(world, str(tmp_path)), nprocs=world, join=True)
    for r in range(world):
        grad = np.load(tmp_path / f"g{r}.npy")
        assert np.allclose(grad, [1.5, 3.0])                  # mean of (1, 2) and (2, 4)


def _average_worker(rank: int, world: int, folder: str) -> None:
    import torch.distributed as dist

    from medxlate.train.distributed import World, average_gradients

    store = dist.FileStore(os.path.join(folder, "store"), world)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([1.0, 2.0]) * (rank + 1)
    average_gradients([p], World(rank, world, rank))
    np.save(os.path.join(folder, f"g{rank}.npy"), p.grad.numpy())
    dist.destroy_process_group()
