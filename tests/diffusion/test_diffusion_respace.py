"""Respacing: kept steps, respaced betas and learned-range bounds."""

import numpy as np
import pytest
import torch

from medxlate.diffusion import GaussianDiffusion, make_betas, respaced, space_timesteps


def test_500_of_4000_fractional_stride():
    kept = space_timesteps(4000, "500")
    stride = 3999 / 499
    assert stride == pytest.approx(8.014, abs=1e-3)
    assert len(kept) == 500 and kept[:4] == [0, 8, 16, 24] and kept[-1] == 3999
    assert kept == [round(k * stride) for k in range(500)]


def test_ddim500_stride_8_and_ddim300_error():
    assert space_timesteps(4000, "ddim500") == list(range(0, 4000, 8))
    assert space_timesteps(1000, "ddim50") == list(range(0, 1000, 20))
    with pytest.raises(ValueError, match="no integer stride gives exactly 300 DDIM steps"):
        space_timesteps(1000, "ddim300")


def test_sections():
    kept = space_timesteps(300, "10,15,20")
    assert len(kept) == 45
    assert kept[:10] == list(range(0, 100, 11))
    assert kept[10] == 100 and kept[24] == 199 and kept[25] == 200 and kept[-1] == 299
    with pytest.raises(ValueError, match="cannot take 120 steps from a section of 100"):
        space_timesteps(300, "120,10,10")
    with pytest.raises(ValueError, match="bad timestep spacing"):
        space_timesteps(300, "fast")


@pytest.mark.parametrize("spec", ["500", "ddim500"])
def test_respaced_betas_match_definition(spec):
    base = GaussianDiffusion(make_betas("cosine", 4000))
    kept = space_timesteps(4000, spec)
    sub = respaced(base, kept)
    ab = base.alphas_cumprod[kept]
    assert sub.num_timesteps == 500
    assert np.allclose(sub.alphas_cumprod, ab, rtol=1e-10, atol=0)
    assert np.allclose(sub.betas, 1 - ab / np.append(1.0, ab[:-1]), rtol=1e-12)
    assert list(sub.timestep_map) == kept
    # Posterior terms are those of the new chain.
    k = 100
    beta_tilde = sub.betas[k] * (1 - ab[k - 1]) / (1 - ab[k])
    assert sub.posterior_variance[k] == pytest.approx(beta_tilde, rel=1e-12)
    # The same from a bare beta array, and respacing a respaced chain composes the map.
    assert np.allclose(respaced(make_betas("cosine", 4000), kept).betas, sub.betas)
    again = respaced(sub, [0, 10, 499])
    assert list(again.timestep_map) == [kept[0], kept[10], kept[499]]


def test_learned_range_uses_the_respaced_bounds():
    base = GaussianDiffusion(make_betas("linear", 1000), var_type="learned_range")
    sub = respaced(base, space_timesteps(1000, "50"))
    t = torch.tensor([7, 7, 7])
    v = torch.tensor([1.0, -1.0, 0.2]).reshape(3, 1)
    var, log_var = sub.model_log_variance(v, t, 2)
    assert var[0].item() == pytest.approx(sub.betas[7], rel=1e-5)
    assert var[1].item() == pytest.approx(sub.posterior_variance[7], rel=1e-5)
    frac = 0.6
    expected = frac * np.log(sub.betas[7]) + (1 - frac) * np.log(sub.posterior_variance[7])
    assert log_var[2].item() == pytest.approx(expected, rel=1e-5)
    assert sub.betas[7] > 10 * base.betas[sub.timestep_map[7]]
