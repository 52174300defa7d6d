"""3D training samples from a dataset's fixed-size volumes (``volumes/<id>.safetensors``).

For 3D models (``ModelSpec.spatial_dims == "3d"``). A sample is one (subject, source tag,
target tag) of the config's ``sources`` x ``targets`` that the subject has, as whole
volumes or, with ``config["patch_size"]``, a random 3D patch (its position seeded by the
sample's augmentation seed, like the 2D crops of :mod:`medxlate.train.data`).

Sample dict: ``"source"``, ``"target"`` (1, D, H, W) float32 in [-1, 1], ``"mask"``
(1, D, H, W) and ``"target_index"`` (long scalar: the target's position in ``targets``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from medxlate.errors import InputError, UsageError


class VolumeData(torch.utils.data.Dataset):
    """3D samples of one split; ``mr_centres``/``ct_centres`` are the sample list (paired),
    so the engine's BatchPlan draws them like slices."""

    def __init__(self, dataset, split: str, config: dict[str, Any], augment: bool = True):
        self.dataset, self.split = dataset, split
        self.targets = list(config["targets"])
        sources = list(config["sources"])
        have = dataset.info.get("volume_size")
        if have is None:
            raise InputError(f"{dataset.root}: no 3D volumes; preprocess with --set "
                             "steps.volumes.enabled=true --set steps.volumes.size=[D,H,W]")
        self.size = [int(n) for n in config.get("patch_size") or config["volume_size"]]
        if any(a > b for a, b in zip(self.size, have)) or (
                not config.get("patch_size") and self.size != list(have)):
            raise UsageError(f"config volume_size/patch_size {self.size} does not fit the "
                             f"dataset's volumes {list(have)}: preprocess with "
                             f"steps.volumes.size={self.size} or set patch_size")
        self.random_patch = augment and self.size != list(have)
        self._arrays: dict[str, dict[str, np.ndarray]] = {}
        self.items: list[tuple[str, str, str]] = []
        for s in dataset.subjects(split):
            if not dataset.root.joinpath("volumes", f"{s['id']}.safetensors").is_file():
                continue
            keys = set(self.arrays(s["id"]))
            self.items += [(s["id"], a, b) for a in sources for b in self.targets
                           if a != b and a in keys and b in keys]
        self.mr_centres = self.ct_centres = self.items

    def arrays(self, subject_id: str) -> dict[str, np.ndarray]:
        if subject_id not in self._arrays:
            self._arrays[subject_id] = self.dataset.volumes(subject_id)
        return self._arrays[subject_id]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: tuple[int, int, int]) -> dict[str, torch.Tensor]:
        subject_id, source, target = self.items[key[0]]
        arrays = self.arrays(subject_id)
        full = arrays["mask"].shape
        if self.random_patch:
            rng = np.random.default_rng([key[2], 3])
            start = [int(rng.integers(0, f - n + 1)) for f, n in zip(full, self.size)]
        else:
            start = [(f - n) // 2 for f, n in zip(full, self.size)]
        box = tuple(slice(a, a + n) for a, n in zip(start, self.size))

        def take(name: str, dtype=np.float32) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(arrays[name][box], dtype=dtype)[None])

        return {"source": take(source), "target": take(target), "mask": take("mask"),
                "target_index": torch.tensor(self.targets.index(target), dtype=torch.long)}
