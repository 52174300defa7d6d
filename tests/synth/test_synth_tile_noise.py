"""Stochastic models: each tile's noise comes from its own seed, so neither --batch-size nor a
cohort neighbour sharing a batch changes a volume's output (issue 16).

Oracles: a fake noisy network whose output is known in closed form from noise drawn here by
hand (torch.randn from numpy's SeedSequence of (volume seed, tile index)); for the shipped
stochastic models, the same volume translated one tile per batch.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from medxlate.diffusion import noise as rng
from medxlate.io.readers import read_volume
from medxlate.intensity import DEFAULT_NORMALISATION
from medxlate.synth.stream import TileStream
from medxlate.synth.volume import SynthOptions, prepare_volume, run_model
from tests.synth.conftest import phantom_mr, write_nifti
from tests.synth.test_synth_stream import hu, prepared


class NoisyNet:
    """0.5 x the centre slice + 0.1 x noise drawn through medxlate.diffusion.noise."""

    def __init__(self):
        self.batches = []

    def translate(self, nets, source, *, config, sampler, steps, eta, generator):
        self.batches.append(source.shape[0])
        k = source.shape[1] // 2
        eps = rng.randn((source.shape[0], 1, *source.shape[2:]), generator)
        return source[:, k:k + 1] * 0.5 + 0.1 * eps


def noisy_model():
    return SimpleNamespace(device=torch.device("cpu"), nets={}, family=NoisyNet(),
                           stochastic=lambda config: True,
                           meta=SimpleNamespace(normalisation=DEFAULT_NORMALISATION))


def by_hand(seed: int, index: int, shape) -> np.ndarray:
    s = int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0])
    return torch.randn((1, *shape), generator=torch.Generator().manual_seed(s)).numpy()[0]


@pytest.mark.parametrize("share,batch", [(False, 1), (False, 4), (True, 4), (True, 3)])
def test_every_tile_gets_the_noise_of_its_own_seed(share, batch):
    preps = [prepared(5, 0), prepared(7, 1), prepared(3, 2)]
    model = noisy_model()
    stream = TileStream(model, SynthOptions("mri2ct", "ddim", batch_size=batch), share=share)
    done = []
    for key, prep in enumerate(preps):
        done += stream.add(key, prep, torch.Generator().manual_seed(100 + key))
    done = dict(done + stream.flush())
    if share:
        assert max(model.family.batches) == batch and len(model.family.batches) == -(-15 // batch)
    for key, prep in enumerate(preps):
        out = done[key]
        expected = np.stack([hu(0.5 * prep.slices_x[k] + 0.1 * by_hand(100 + key, k, (6, 5)))
                             for k in range(len(prep.slices_x))])
        np.testing.assert_allclose(out.total / out.weights, expected, rtol=0, atol=1e-3)


def test_no_generator_keeps_the_plain_path():
    model = noisy_model()
    stream = TileStream(model, SynthOptions("mri2ct", "ddim", batch_size=2))
    ((_, out),) = stream.add(0, prepared(2, 0), None)
    assert np.isfinite(out.total).all()


# The shipped stochastic models, each with a short sampler so the test stays fast.
SHIPPED = [
    ("syndiff", "adversarial", None, 0.0),
    ("syndiff-unpaired", "adversarial", None, 0.0),
    ("ddpm", "ddim", 3, 1.0),
    ("ddpm", "respaced", 3, 0.0),
    ("mt-ddpm", "ddim", 2, 0.5),
    ("dit", "ddim", 2, 1.0),
    ("med-dit", "ddim", 2, 1.0),
    ("mediffuse-ip2p", "ddim", 2, 1.0),
    ("mediffuse-controlnet", "ddim", 2, 1.0),
    ("pix2pix", "one-shot", None, 0.0),  # with --samples 2: test-time dropout is its noise
]


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    path = tmp_path_factory.mktemp("tile-noise") / "mr.nii.gz"
    return read_volume(write_nifti(path, phantom_mr((48, 44, 3)), np.diag([3.0, 3.0, 4.0, 1])))


@pytest.mark.parametrize("name,sampler,steps,eta", SHIPPED,
                         ids=[f"{m}-{s}" for m, s, _, _ in SHIPPED])
def test_shipped_stochastic_models_ignore_the_batch_size(head, name, sampler, steps, eta):
    from medxlate.synth.model import load_model

    torch.set_num_threads(1)  # one thread: one convolution algorithm for every batch size
    model = load_model(name)
    samples = 2 if name == "pix2pix" else 1
    direction = "ct2mri" if name == "mediffuse-controlnet" else "mri2ct"
    out = {}
    for batch, seed in ((1, 3), (64, 3), (64, 4)):
        opts = SynthOptions(direction, sampler, steps, eta, samples, batch)
        prep = prepare_volume(head, model, opts)
        out[batch, seed] = run_model(prep, model, opts, torch.Generator().manual_seed(seed))
    tiles = len(prep.plan.tiles)
    assert tiles >= 3  # several tiles share the big batch
    one, many, other = out[1, 3].total, out[64, 3].total, out[64, 4].total
    # float32 rounding of another batch size only (up to 0.01 seen in these HU sums)
    np.testing.assert_allclose(many, one, rtol=0, atol=0.05)
    assert np.abs(other - one).max() > 1.0  # the noise matters: another seed, another output
