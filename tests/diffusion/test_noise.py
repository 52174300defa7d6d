"""medxlate.diffusion.noise: per-sample generators make a row's noise independent of its batch.

Oracles: torch.randn from a generator seeded by hand (numpy's SeedSequence for tile seeds), and
the plain-generator path compared with torch.randn itself (training and 3D models use it).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medxlate.diffusion.noise import PerSample, generator_list, rand, randn, tile_seed


def hand_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0])


def test_tile_seed_is_numpys_seed_sequence_and_spreads():
    assert tile_seed(7, 3) == hand_seed(7, 3)
    seeds = {tile_seed(s, k) for s in range(4) for k in range(50)}
    assert len(seeds) == 200  # no two (volume seed, tile) pairs share a stream


def test_each_row_is_its_own_generators_stream():
    seeds = [tile_seed(5, k) for k in range(4)]
    batch = randn((4, 1, 3, 3), PerSample.seeded(seeds, "cpu"))
    for k, s in enumerate(seeds):
        alone = torch.randn((1, 3, 3), generator=torch.Generator().manual_seed(s))
        assert torch.equal(batch[k], alone)
    # the same rows in another batch, in another order: the same noise
    again = randn((2, 1, 3, 3), PerSample.seeded([seeds[3], seeds[1]], "cpu"))
    assert torch.equal(again[0], batch[3]) and torch.equal(again[1], batch[1])


def test_successive_draws_advance_each_row():
    gens = PerSample.seeded([1, 2], "cpu")
    first, second = randn((2, 5), gens), randn((2, 5), gens)
    g = torch.Generator().manual_seed(2)
    torch.randn(5, generator=g)
    assert torch.equal(second[1], torch.randn(5, generator=g))
    assert not torch.equal(first, second)


def test_plain_generator_and_none_draw_as_torch_does():
    a = randn((3, 4), torch.Generator().manual_seed(9), dtype=torch.float64)
    b = torch.randn((3, 4), generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    assert torch.equal(a, b)
    u = rand((2, 3), torch.Generator().manual_seed(9))
    assert torch.equal(u, torch.rand((2, 3), generator=torch.Generator().manual_seed(9)))
    assert randn((2, 2), None).shape == (2, 2)


def test_mismatched_batch_and_empty_lists_are_refused():
    with pytest.raises(ValueError, match="2 per-sample generators for a batch of 3"):
        randn((3, 4), PerSample.seeded([1, 2], "cpu"))
    with pytest.raises(ValueError, match="at least one"):
        PerSample([])


def test_generator_list_for_diffusers():
    gens = PerSample.seeded([1, 2], "cpu")
    assert generator_list(gens) == list(gens.generators)
    g = torch.Generator()
    assert generator_list(g) is g and generator_list(None) is None
