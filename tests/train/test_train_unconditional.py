"""`pairing: unconditional`: the engine draws target slices only, and trains mt-ddpm on them."""

from __future__ import annotations

import json

import numpy as np

from medxlate.preprocess.dataset import load_dataset
from medxlate.train.data import SliceData

TINY_MT_DDPM = {"slice_size": [16, 16], "model_channels": 8, "channel_mult": [1, 2],
                "res_blocks": 1, "head_channels": 8, "window": 4, "diffusion_steps": 40,
                "sampling_steps": 4, "batch_size": 2}


def test_unconditional_samples_hold_the_target_slice_only(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    cfg = {"context": 0, "pairing": "unconditional", "direction": "mri2ct", "source": "none",
           "target": "ct", "augment": {}, "slice_size": None}
    data = SliceData(ds, "train", cfg, augment=False)
    sample = data[(3, 0, 0)]
    assert set(sample) <= {"ct", "mask", "ct_edges"} and "mr" not in sample
    sid, n = data.mr_centres[3]
    assert np.array_equal(sample["ct"].numpy(), np.asarray(ds.shard(sid)["ct"][n:n + 1]))
    mr_cfg = {**cfg, "target": "t1", "direction": "ct2mri"}
    assert set(SliceData(ds, "train", mr_cfg, augment=False)[(0, 0, 0)]) <= {
        "mr", "mask", "mr_edges"}


def test_engine_trains_an_unconditional_mt_ddpm(tiny_dataset, tmp_path):
    from medxlate.train import train

    result = train("mt-ddpm", tiny_dataset, tmp_path / "run", config="demo", steps=2,
                   overrides={**TINY_MT_DDPM, "pairing": "unconditional", "target": "ct",
                              "val_every": 0, "checkpoint_every": 10, "progress": False},
                   device="cpu", seed=0)
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (cfg["pairing"], cfg["source"], cfg["target"]) == ("unconditional", "none", "ct")
    assert result.val == {}                       # nothing to score a generated slice against
    assert all(np.isfinite(r["loss"]) for r in result.losses)
    assert result.model_path.is_file()
