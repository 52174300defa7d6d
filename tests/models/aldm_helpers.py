"""A tiny 3D dataset (docs/dataset-format.md, volumes/) and a tiny aldm config for tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from medxlate.preprocess.dataset import write_shard

CT_WINDOW = {"kind": "window", "low": -1024.0, "high": 3000.0}

# 16^3 volumes -> 4^3 latents (f = 4); UNet levels 4 -> 2 -> 1.
TINY_ALDM = {"volume_size": [16, 16, 16], "vq_channels": [4, 8, 8], "vq_res_layers": 1,
             "num_embeddings": 16, "embedding_dim": 2, "disc_channels": 4, "disc_layers": 1,
             "spade_channels": [4, 8, 8, 8, 8, 4], "spade_hidden": 4,
             "unet_channels": [8, 8, 8], "unet_head_channels": 4, "unet_groups": 4,
             "diffusion_steps": 20, "ddim_steps": 4, "batch_size": 2, "ema": 0.9,
             "stage_steps": {"autoencoder": 2, "spade": 2}, "steps": 6,
             "checkpoint_every": 2, "log_every": 1, "progress": False,
             "grad_checkpointing": True, "adversarial_weight": 0.1, "adversarial_start": 0}


def make_volume_dataset(root: Path, n_subjects: int = 2, size: int = 16, seed: int = 0) -> Path:
    """Subjects with t1 (= mr), t2 and ct volumes of a ball with a bright core."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[:size, :size, :size] / (size - 1) * 2 - 1
    subjects = []
    for i in range(n_subjects):
        sid = f"sub-{i:03d}"
        r = rng.uniform(0.6, 0.85)
        body = xx ** 2 + yy ** 2 + zz ** 2 < r ** 2
        core = (xx - 0.1) ** 2 + yy ** 2 + zz ** 2 < (r / 3) ** 2
        t1 = np.where(body, 0.2, -1.0) + np.where(core, 0.5, 0.0)
        t2 = np.where(body, 0.6, -1.0) - np.where(core, 0.7, 0.0)
        ct = np.where(body, -0.45, -1.0) + np.where(core, 0.6, 0.0)
        arrays = {"mr": t1, "t1": t1, "t2": t2, "ct": ct, "mask": body.astype(np.uint8)}
        write_shard(root / "volumes" / f"{sid}.safetensors",
                    {k: v.astype(np.float32) if k != "mask" else v for k, v in arrays.items()},
                    {"start": [0, 0, 0], "size": [size] * 3})
        subjects.append({"id": sid, "split": "train", "modalities": ["mr", "ct"],
                         "contrasts": ["t1", "t2"], "shape": [size] * 3,
                         "mr_norm": {"low": 0.0, "high": 1000.0},
                         "volume": {"start": [0, 0, 0], "size": [size] * 3}})
    info = {"format": "medxlate-dataset/1", "medxlate": "0.1.0", "region": "test",
            "paired": True, "spacing_mm": [4.0, 4.0, 4.0], "slice_axis": 2,
            "slice_size": [size, size], "volume_size": [size] * 3, "steps": [],
            "normalisation": {"ct": CT_WINDOW, "mr": {"kind": "percentile", "low_pct": 0.5,
                                                      "high_pct": 99.5}},
            "subjects": subjects}
    (root / "dataset.json").write_text(json.dumps(info, indent=1))
    return root
