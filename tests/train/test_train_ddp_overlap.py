"""Issue 16: DistributedDataParallel for single-optimiser families (2 gloo processes).

Oracles: the step all-reduce path (average_gradients, tested against hand values in
test_train_ddp.py) for the weights, and an uninterrupted DDP run for --resume.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY_DDPM

from medxlate.models.registry import get_spec
from medxlate.train.ddp import ddp_nets
from medxlate.weights import load_checkpoint

HERE = Path(__file__).parent


def _family_nets(name: str, **over):
    spec = get_spec(name)
    family = spec.load_entry()
    cfg = {**spec.config("demo"), **over}
    nets = family.build(cfg)
    return family, nets, family.optimizers(nets, cfg)


def test_ddp_serves_single_optimiser_families_only():
    family, nets, opts = _family_nets("ddpm", **{k: v for k, v in TINY_DDPM.items()
                                                 if k in ("model_channels", "channel_mult",
                                                          "num_res_blocks", "slice_size",
                                                          "attention_resolutions",
                                                          "head_channels")})
    assert ddp_nets(family, nets, opts) == ["unet"]
    family, nets, opts = _family_nets("pix2pix", ngf=4, ndf=4, n_downs=3, slice_size=[16, 16])
    assert len(opts) == 2 and ddp_nets(family, nets, opts) is None  # GAN: all-reduce path


@pytest.mark.slow
def test_ddp_matches_allreduce_and_resumes_exactly(tiny_dataset, tmp_path):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    config = tmp_path / "tiny.json"
    # A constant LR: a 2-step run extended to 4 by --resume then follows the same schedule
    # as an uninterrupted 4-step run (a cosine schedule depends on the total).
    config.write_text(json.dumps({"base": "demo", **TINY_DDPM, "batch_size": 2,
                                  "lr_schedule": "constant"}))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2",
                           str(HERE / "ddp_runs.py"), str(tiny_dataset), str(tmp_path),
                           str(config)],
                          check=False, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp, ddp_meta = load_checkpoint(tmp_path / "ddp" / "model.safetensors")
    ref, ref_meta = load_checkpoint(tmp_path / "allreduce" / "model.safetensors")
    resumed, _ = load_checkpoint(tmp_path / "resumed" / "model.safetensors")
    assert ddp_meta.extra["data_parallel"] == "ddp"
    assert ref_meta.extra["data_parallel"] == "allreduce"
    assert ddp_meta.extra["hardware"]["world_size"] == 2
    # The checkpoint holds the plain network, as a single-process run writes it.
    single = get_spec("ddpm").load_entry().build(ddp_meta.config)["unet"].state_dict()
    assert {k: tuple(v.shape) for k, v in ddp.items()} == {
        f"unet.{k}": tuple(v.shape) for k, v in single.items()}
    # Same update as averaging at the step (summation order may differ in the last bits).
    for k in ref:
        assert torch.allclose(ddp[k], ref[k], rtol=1e-4, atol=1e-6), k
    # --resume from step 2 continues exactly where the uninterrupted run went.
    assert all(torch.equal(resumed[k], ddp[k]) for k in ddp)
