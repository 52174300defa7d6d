"""Training samples from a dataset folder's slice shards (docs/dataset-format.md).

A sample is keyed by ``(source centre, target centre, augmentation seed)``: the engine's
sampler (:mod:`medxlate.train.sampling`) decides the keys, so the data order and every
augmentation are fixed by the seed, whatever the number of DataLoader workers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from medxlate.errors import InputError, UsageError
from medxlate.train.augment import augment_sample

Centre = tuple[str, int]   # (subject id, slice index in its shard)


class SliceData(torch.utils.data.Dataset):
    """2D / 2.5D slices of one split of a dataset.

    Args:
        dataset: a :class:`medxlate.preprocess.dataset.Dataset`.
        split: "train", "val" or "test".
        config: the resolved config (``context``, ``pairing``, ``direction``, ``augment``).
        augment: apply ``config["augment"]`` (False for validation).

    Attributes:
        mr_centres / ct_centres: the slices that may be drawn (``keep == 1``). For paired data
            both lists are the same slices of subjects that have both modalities.
    """

    def __init__(self, dataset, split: str, config: dict[str, Any], augment: bool = True):
        self.dataset = dataset
        self.split = split
        self.k = int(config["context"])
        self.paired = config["pairing"] == "paired"
        self.mr_is_source = config["direction"] == "mri2ct"
        # Unconditional generation draws target slices only (no source image exists).
        self.only = (target_key(config) if config["pairing"] == "unconditional" else None)
        self.options = config["augment"] if augment else None
        from medxlate.train import any_contrast

        # any-contrast draws the MR source from labels; validation keeps the dataset's MR
        self.any_contrast = (augment and any_contrast.enabled(config["augment"])
                             and self.mr_is_source and config["pairing"] != "unconditional")
        if self.any_contrast:
            spacing = [float(v) for v in dataset.info.get("spacing_mm") or (1.0, 1.0, 1.0)]
            axis = int(dataset.info.get("slice_axis", 2))
            # the label stack's axes: the slice axis first, then the two kept axes
            self.label_spacing = [spacing[axis], *(spacing[a] for a in (0, 1, 2) if a != axis)]
            self.label_k = self.k + any_contrast.extra_context(config["augment"],
                                                               self.label_spacing[0])
        self.random_crop = augment
        self.crop = crop_size(config.get("slice_size"), dataset.info.get("slice_size"))
        self._arrays: dict[str, dict[str, np.ndarray]] = {}
        # Canonical RAS+ axes 0, 1, 2 are left-right, posterior-anterior, inferior-superior;
        # a slice keeps the two that are not the slice axis, as dims -2 and -1.
        kept = [a for a in (0, 1, 2) if a != int(dataset.info.get("slice_axis", 2))]
        self.lr_dim = kept.index(0) - 2 if 0 in kept else None
        self.ap_dim = kept.index(1) - 2 if 1 in kept else None
        subjects = dataset.subjects(split)
        if self.only is not None:
            self.mr_centres = self._centres([s for s in subjects
                                             if self.only in s["modalities"]])
            self.ct_centres = self.mr_centres
        elif self.paired:
            both = [s for s in subjects if {"mr", "ct"} <= set(s["modalities"])]
            self.mr_centres = self._centres(both)
            self.ct_centres = self.mr_centres
        else:
            self.mr_centres = self._centres([s for s in subjects if "mr" in s["modalities"]])
            self.ct_centres = self._centres([s for s in subjects if "ct" in s["modalities"]])
        if self.any_contrast:
            missing = sorted({c[0] for c in self.mr_centres
                              if "labels" not in self.arrays(c[0])})
            if missing:
                raise UsageError(f"augment.profile=any-contrast needs tissue labels in the "
                                 f"dataset, but the shards of {', '.join(missing[:3])}"
                                 f"{' ...' if len(missing) > 3 else ''} have none: "
                                 "preprocess a cohort whose subjects have labels.nii.gz "
                                 "(phantoms do; see docs/any-contrast.md)")

    def _centres(self, subjects: list[dict]) -> list[Centre]:
        out = []
        for s in subjects:
            keep = np.asarray(self.arrays(s["id"])["keep"])
            out.extend((s["id"], int(n)) for n in np.flatnonzero(keep))
        return out

    def arrays(self, subject_id: str) -> dict[str, np.ndarray]:
        """The memory-mapped shard of a subject (opened once per process)."""
        if subject_id not in self._arrays:
            self._arrays[subject_id] = self.dataset.shard(subject_id)
        return self._arrays[subject_id]

    def stack(self, centre: Centre, name: str, k: int | None = None,
              dtype=np.float32) -> np.ndarray:
        """Slices ``n-k .. n+k`` (clamped at the ends; k: the config's context) of tensor
        ``name`` as (C, H, W)."""
        subject_id, n = centre
        k = self.k if k is None else k
        array = self.arrays(subject_id).get(name)
        if array is None:
            raise InputError(f"{self.dataset.root}: shard of {subject_id} has no {name!r}")
        idx = np.clip(np.arange(n - k, n + k + 1), 0, array.shape[0] - 1)
        return np.asarray(array[idx], dtype=dtype)

    def _centre_only(self, centre: Centre, name: str) -> np.ndarray | None:
        array = self.arrays(centre[0]).get(name)
        if array is None:
            return None
        return np.asarray(array[centre[1]], dtype=np.float32)[None]

    def __len__(self) -> int:
        return len(self.mr_centres if self.mr_is_source else self.ct_centres)

    def __getitem__(self, key: tuple[int, int, int]) -> dict[str, torch.Tensor]:
        """``key = (mr centre index, ct centre index, augmentation seed)``."""
        i_mr, i_ct, aug_seed = key
        if self.only is not None:
            return self._target_only(self.mr_centres[i_mr], aug_seed)
        mr_c, ct_c = self.mr_centres[i_mr], self.ct_centres[i_ct]
        sample = {"mr": self.stack(mr_c, "mr"), "ct": self.stack(ct_c, "ct")}
        if self.any_contrast:
            sample["labels"] = self.stack(mr_c, "labels", self.label_k, np.int16)
        # The mask and edges belong to the slice being translated (the source's).
        source_c = mr_c if self.mr_is_source else ct_c
        for name in ("mask", "mr_edges", "ct_edges"):
            centre = source_c if self.paired or name == "mask" else (
                mr_c if name == "mr_edges" else ct_c)
            value = self._centre_only(centre, name)
            if value is not None:
                sample[name] = value
        return self._finish(sample, aug_seed, self.mr_is_source)

    def _target_only(self, centre: Centre, aug_seed: int) -> dict[str, torch.Tensor]:
        """An unconditional sample: the target stack and its slice's mask/edges only."""
        sample = {self.only: self.stack(centre, self.only)}
        for name in ("mask", f"{self.only}_edges"):
            value = self._centre_only(centre, name)
            if value is not None:
                sample[name] = value
        return self._finish(sample, aug_seed, False)

    def _finish(self, sample: dict[str, np.ndarray], aug_seed: int,
                mr_is_source: bool) -> dict[str, torch.Tensor]:
        """Crop and augment a sample (both seeded by ``aug_seed``); arrays -> tensors."""
        if self.crop is not None:
            sample = self._crop(sample, aug_seed)
        if "labels" in sample:  # any-contrast: a new MR from the labels; the CT stays exact
            from medxlate.train.any_contrast import draw_mr, redraw

            labels = sample.pop("labels")
            if redraw(self.options, aug_seed):  # else: the dataset's own MR (augment.ac_p)
                sample["mr"] = draw_mr(labels, self.k, self.label_spacing,
                                       self.dataset.normalisation, aug_seed, self.options)
        if self.options is not None:
            rng = np.random.default_rng(aug_seed)
            sample = augment_sample(sample, rng, self.options, mr_is_source, self.lr_dim,
                                    self.ap_dim)
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sample.items()}

    def _crop(self, sample: dict[str, np.ndarray], aug_seed: int) -> dict[str, np.ndarray]:
        """Cut every array to ``self.crop`` at one position: random (seeded by the sample's
        augmentation seed, on its own stream) for training, centred for validation."""
        (h, w), (ch, cw) = next(iter(sample.values())).shape[-2:], self.crop
        if self.random_crop:
            rng = np.random.default_rng([aug_seed, 1])
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        else:
            y0, x0 = (h - ch) // 2, (w - cw) // 2
        return {k: v[..., y0:y0 + ch, x0:x0 + cw] for k, v in sample.items()}


def target_key(config: dict[str, Any]) -> str:
    """The shard key ("ct" or "mr") of a config's target modality."""
    target = config.get("target")
    if target is None:
        return "ct" if config["direction"] == "mri2ct" else "mr"
    return "ct" if target == "ct" else "mr"


def crop_size(want, have) -> tuple[int, int] | None:
    """The in-plane crop a config asks of a dataset's slices, or None when sizes are equal.

    A model may train on patches smaller than the stored slices (synthesize then tiles the
    volume with patches of the config's ``slice_size``); larger than stored is refused.
    """
    if want is None or have is None or list(want) == list(have):
        return None
    if len(want) != 2 or any(int(a) > int(b) for a, b in zip(want, have)):
        raise UsageError(f"config slice_size {list(want)} exceeds the dataset's slices "
                         f"{list(have)}: preprocess at that size or choose a size <= {list(have)}")
    return int(want[0]), int(want[1])


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack samples into a batch dict (B, C, H, W)."""
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}
