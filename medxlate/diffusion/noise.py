"""Noise for samplers: from one generator for the whole batch, or one generator per sample.

Every sampler and stochastic model draws its noise through :func:`randn` / :func:`rand`. With a
plain ``torch.Generator`` (or None) a draw is one ``torch.randn`` of the batch's shape, as in
training. With :class:`PerSample` each batch row is drawn from its own generator, so a sample's
noise depends on its own seed alone, not on which other samples share its batch or where it
sits in it. Synthesis seeds one generator per tile from the volume's seed and the tile's index
(:func:`tile_seed`), which is what lets ``--batch-size`` (and ``--batch-size auto``, which
depends on free device memory) change the speed of a stochastic model but not its output, and
lets consecutive volumes of a cohort share batches (``synth.stream``).

Example:
    >>> import torch
    >>> gens = PerSample.seeded([tile_seed(0, k) for k in range(3)], "cpu")
    >>> batch = randn((3, 2), gens)
    >>> alone = randn((1, 2), PerSample.seeded([tile_seed(0, 2)], "cpu"))
    >>> bool(torch.equal(batch[2:], alone))
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


class PerSample:
    """One ``torch.Generator`` per batch row (all on one device)."""

    def __init__(self, generators: Sequence[torch.Generator]) -> None:
        if not generators:
            raise ValueError("PerSample needs at least one generator")
        self.generators = tuple(generators)
        if len({str(g.device) for g in self.generators}) != 1:
            raise ValueError("PerSample generators must share one device")

    @classmethod
    def seeded(cls, seeds: Sequence[int], device) -> PerSample:
        return cls([torch.Generator(device=device).manual_seed(int(s)) for s in seeds])

    @property
    def device(self) -> torch.device:
        return self.generators[0].device

    def __len__(self) -> int:
        return len(self.generators)


def tile_seed(seed: int, index: int) -> int:
    """A 64-bit seed for tile ``index`` of a volume seeded ``seed`` (numpy's SeedSequence
    hashing, so neighbouring seeds and indices give unrelated streams)."""
    state = np.random.SeedSequence([int(seed) & (2**64 - 1), int(index)]).generate_state(
        1, np.uint64)
    return int(state[0])


def generator_list(generator):
    """What libraries that take a list of per-row generators (diffusers) expect."""
    return list(generator.generators) if isinstance(generator, PerSample) else generator


def randn(shape, generator, device=None, dtype=None) -> torch.Tensor:
    """Standard normal noise of ``shape``, drawn on the generator's device, returned on
    ``device`` (default: that device)."""
    return _draw(torch.randn, shape, generator, device, dtype)


def rand(shape, generator, device=None, dtype=None) -> torch.Tensor:
    """Uniform [0, 1) noise of ``shape``, drawn like :func:`randn`."""
    return _draw(torch.rand, shape, generator, device, dtype)


def _draw(fn, shape, generator, device, dtype) -> torch.Tensor:
    shape = tuple(int(s) for s in shape)
    if isinstance(generator, PerSample):
        if shape[0] != len(generator):
            raise ValueError(f"{len(generator)} per-sample generators for a batch of "
                             f"{shape[0]}")
        out = torch.stack([fn(shape[1:], generator=g, device=g.device, dtype=dtype)
                           for g in generator.generators])
    else:
        where = generator.device if generator is not None else device
        out = fn(shape, generator=generator, device=where, dtype=dtype)
    return out if device is None else out.to(device)
