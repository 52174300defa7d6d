"""Cross-validation folds by subject: ``medxlate train --fold K`` (of ``n_folds``).

The subjects of a dataset's train and val splits (its test split stays out) are shuffled by
``fold_seed`` and cut into ``n_folds`` nearly equal folds; fold K validates on fold K and
trains on the others. The split depends only on the subject ids and the seed, so every fold of
a cross-validation sees the same partition, and it is written into the run folder
(``folds.json``).

Example:
    >>> split = fold_split(["a", "b", "c", "d", "e"], n_folds=5, seed=0)
    >>> sorted(i for fold in split for i in fold)
    ['a', 'b', 'c', 'd', 'e']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medxlate.errors import UsageError


def fold_split(subject_ids: list[str], n_folds: int, seed: int) -> list[list[str]]:
    """``n_folds`` disjoint lists covering ``subject_ids`` (sorted first, then shuffled)."""
    ids = sorted(set(subject_ids))
    if n_folds < 2:
        raise UsageError(f"n_folds={n_folds}: need at least 2 folds")
    if len(ids) < n_folds:
        raise UsageError(f"{len(ids)} subject(s) cannot make {n_folds} folds")
    order = np.random.default_rng(int(seed)).permutation(len(ids))
    return [[ids[i] for i in sorted(part)] for part in np.array_split(order, n_folds)]


class FoldView:
    """A dataset whose ``subjects(split)`` follow a fold: "train" = the other folds, "val" =
    this fold, "test" = the dataset's test split; everything else is the dataset's."""

    def __init__(self, dataset, fold: int, n_folds: int, seed: int):
        if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < n_folds:
            raise UsageError(f"--fold {fold!r}: choose 0 .. {n_folds - 1} (n_folds={n_folds})")
        self._dataset = dataset
        pool = [s["id"] for s in dataset.subjects() if s["split"] in ("train", "val")]
        self.folds = fold_split(pool, n_folds, seed)
        self.fold, self.n_folds, self.seed = fold, n_folds, seed
        val = set(self.folds[fold])
        self._split = {i: ("val" if i in val else "train") for i in pool}

    def subjects(self, split: str | None = None) -> list[dict]:
        out = []
        for s in self._dataset.subjects():
            entry = dict(s, split=self._split.get(s["id"], s["split"]))
            if split is None or entry["split"] == split:
                out.append(entry)
        return out

    def record(self) -> dict[str, Any]:
        """What folds.json holds."""
        return {"fold": self.fold, "n_folds": self.n_folds, "fold_seed": self.seed,
                "folds": self.folds, "val": self.folds[self.fold],
                "train": sorted(i for k, f in enumerate(self.folds) if k != self.fold
                                for i in f)}

    def __getattr__(self, name: str):
        return getattr(self._dataset, name)
