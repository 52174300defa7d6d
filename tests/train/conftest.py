"""A tiny dataset folder written per docs/dataset-format.md, for the engine tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medxlate.preprocess.dataset import write_shard

CT_WINDOW = {"kind": "window", "low": -1024.0, "high": 3000.0}


def _subject_arrays(rng: np.random.Generator, n: int, size: int) -> dict[str, np.ndarray]:
    """An ellipse 'body' with a bright disc; CT = a fixed function of MR, so it is learnable."""
    yy, xx = np.mgrid[:size, :size] / (size - 1) * 2 - 1
    mr = np.full((n, size, size), -1.0, np.float32)
    ct = np.full((n, size, size), -1.0, np.float32)
    mask = np.zeros((n, size, size), np.uint8)
    for z in range(n):
        a, b = rng.uniform(0.55, 0.8, size=2)
        body = (xx / a) ** 2 + (yy / b) ** 2 < 1
        cx, cy = rng.uniform(-0.3, 0.3, size=2)
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < 0.04
        mr[z][body] = 0.2
        mr[z][disc] = 0.8
        ct[z][body] = -0.45                      # about 0 HU
        ct[z][disc] = 0.1                        # about 1200 HU: "bone"
        mask[z] = body
    return {"mr": mr, "ct": ct, "mask": mask, "mr_edges": np.zeros_like(mask),
            "ct_edges": np.zeros_like(mask), "keep": (mask.reshape(n, -1).mean(1) > 0.1)
            .astype(np.uint8), "index": np.arange(n, dtype=np.int32)}


def make_dataset(root: Path, splits=("train", "train", "val"), size: int = 16,
                 n_slices: int = 6, seed: int = 0) -> Path:
    """Write DATASET/dataset.json and shards/<id>.safetensors; returns ``root``."""
    rng = np.random.default_rng(seed)
    subjects = []
    for i, split in enumerate(splits):
        sid = f"sub-{i:03d}"
        arrays = _subject_arrays(rng, n_slices, size)
        write_shard(root / "shards" / f"{sid}.safetensors", arrays, {"offset": [0, 0]})
        subjects.append({"id": sid, "split": split, "modalities": ["mr", "ct"],
                         "shape": [size, size, n_slices], "n_slices": n_slices,
                         "mr_norm": {"low": 0.0, "high": 1000.0}})
    info = {"format": "medxlate-dataset/1", "medxlate": "0.1.0", "region": "test",
            "paired": True, "spacing_mm": [1.0, 1.0, 1.0], "slice_axis": 2,
            "slice_size": [size, size], "steps": [],
            "normalisation": {"ct": CT_WINDOW, "mr": {"kind": "percentile", "low_pct": 0.5,
                                                      "high_pct": 99.5}},
            "subjects": subjects}
    (root / "dataset.json").write_text(json.dumps(info, indent=1))
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("ds") / "DATASET")


# A ddpm small enough for a few CPU steps in well under a second each.
TINY_DDPM = {"slice_size": [16, 16], "model_channels": 8, "channel_mult": [1, 2],
             "num_res_blocks": 1, "attention_resolutions": [8], "head_channels": 8,
             "diffusion_steps": 50, "batch_size": 4, "steps": 4, "ema": 0.9,
             "checkpoint_every": 2, "val_every": 0, "val_slices": 2, "val_steps": 2,
             "log_every": 1, "progress": False, "warmup_steps": 0}
