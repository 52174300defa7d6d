"""Which samples each rank draws, in which order: a DistributedSampler equivalent.

Every rank computes the same permutation of the training centres from ``(seed, epoch)``,
pads it to a multiple of ``world_size * batch_size`` by wrapping around, and takes every
``world_size``-th element starting at its rank; so ranks see disjoint slices, all ranks run
the same number of batches, and the order depends only on the seed. The position of a batch
is a pure function of the micro-batch counter, which is what makes ``--resume`` exact.
"""

from __future__ import annotations

import numpy as np


class BatchPlan:
    """Batches of sample keys ``(mr index, ct index, augmentation seed)`` for one rank.

    Args:
        n_mr / n_ct: numbers of MR and CT centres (equal and aligned for paired data).
        paired: draw the CT centre equal to the MR centre.
        batch_size: per-rank micro-batch size.
        seed: the run's seed; rank, world_size: this process's place in the job.
    """

    def __init__(self, n_mr: int, n_ct: int, paired: bool, batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1):
        if n_mr == 0 or n_ct == 0:
            raise ValueError("no training slices")
        self.n_mr, self.n_ct, self.paired = n_mr, n_ct, paired
        self.batch_size, self.seed = batch_size, seed
        self.rank, self.world_size = rank, world_size
        per_rank = -(-n_mr // world_size)                # ceil
        self.batches_per_epoch = max(1, -(-per_rank // batch_size))
        self._epoch: int | None = None
        self._keys: list[tuple[int, int, int]] = []

    def _epoch_keys(self, epoch: int) -> list[tuple[int, int, int]]:
        rng = np.random.default_rng([self.seed, epoch])
        total = self.batches_per_epoch * self.batch_size * self.world_size
        order = np.resize(rng.permutation(self.n_mr), total)      # wraps around to pad
        partner = order if self.paired else np.resize(rng.permutation(self.n_ct), total)
        aug = rng.integers(0, 2**63 - 1, size=total)
        return [(int(order[i]), int(partner[i]), int(aug[i]))
                for i in range(self.rank, total, self.world_size)]

    def batch(self, index: int) -> list[tuple[int, int, int]]:
        """The keys of this rank's ``index``-th micro-batch since the start of training."""
        epoch, pos = divmod(index, self.batches_per_epoch)
        if epoch != self._epoch:
            self._epoch, self._keys = epoch, self._epoch_keys(epoch)
        return self._keys[pos * self.batch_size:(pos + 1) * self.batch_size]


class PlanSampler:
    """A batch sampler for torch's DataLoader yielding ``plan.batch(i)`` for i from ``start``."""

    def __init__(self, plan: BatchPlan, start: int, count: int):
        self.plan, self.start, self.count = plan, start, count

    def __iter__(self):
        for i in range(self.start, self.start + self.count):
            yield self.plan.batch(i)

    def __len__(self) -> int:
        return self.count
