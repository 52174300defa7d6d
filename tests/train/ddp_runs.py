"""Run under torchrun by test_train_ddp_overlap.py: four tiny ddpm trainings in one job.

Usage: torchrun --standalone --nproc_per_node 2 ddp_runs.py DATASET OUT CONFIG.json
Writes OUT/ddp, OUT/allreduce (4 steps each) and OUT/resumed (2 steps, then --resume to 4).
The process group stays up between the runs (train() would otherwise tear it down).
"""

import sys
from pathlib import Path

from medxlate.train import engine

engine.close_world = lambda world: None  # one process group for all four runs

data, out, config = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
common = {"config": config, "device": "cpu", "quiet": True}
engine.train("ddpm", data, out / "ddp", steps=4, **common)
engine.train("ddpm", data, out / "allreduce", steps=4,
             overrides={"data_parallel": "allreduce"}, **common)
engine.train("ddpm", data, out / "resumed", steps=2, **common)
engine.train("ddpm", data, out / "resumed", steps=4, resume=True, device="cpu", quiet=True)
