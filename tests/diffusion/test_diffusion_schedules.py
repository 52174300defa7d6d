"""Beta schedules and SynDiff's VP grid against their definitions."""

import math

import numpy as np
import pytest

from medxlate.diffusion import make_betas, syndiff_vp


def test_linear_scaled_to_T():
    betas = make_betas("linear", 4000)
    assert betas.dtype == np.float64 and betas.shape == (4000,)
    assert betas[0] == pytest.approx(2.5e-5) and betas[-1] == pytest.approx(0.005)
    assert np.allclose(np.diff(betas), (0.005 - 2.5e-5) / 3999)


def test_cosine_T4000_alpha_bar_and_cap():
    betas = make_betas("cosine", 4000)
    alpha_bar = np.cumprod(1 - betas)
    assert alpha_bar[-1] == pytest.approx(1.5e-10, rel=0.05)
    assert betas.max() <= 0.999
    # alpha_bar(t) = f(t/T)/f(0) wherever the cap is inactive.
    f = [math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2 for u in (0, 0.5)]
    assert alpha_bar[1999] == pytest.approx(f[1] / f[0], rel=1e-9)
    assert make_betas("cosine", 10)[-1] == 0.999


def test_scaled_linear():
    betas = make_betas("scaled_linear", 1000)
    assert betas[0] == pytest.approx(0.0015) and betas[-1] == pytest.approx(0.0195)
    assert np.allclose(np.diff(np.sqrt(betas)), (0.0195 ** 0.5 - 0.0015 ** 0.5) / 999)


def test_unknown_schedule_is_clear():
    with pytest.raises(ValueError, match="unknown beta schedule 'quadratic'"):
        make_betas("quadratic", 10)
    with pytest.raises(ValueError, match="T >= 1"):
        make_betas("linear", 0)
    with pytest.raises(ValueError, match=r"linear schedule with T=10 .* betas outside \(0, 1\)"):
        make_betas("linear", 10)


def test_syndiff_vp_values():
    sched = syndiff_vp()
    assert np.allclose(sched.t, [0.001, 0.25075, 0.5005, 0.75025, 1.0])
    assert np.allclose(sched.betas, [0.47826, 0.84921, 0.95642, 0.98740], atol=5e-5)
    t = sched.t
    assert np.allclose(sched.alpha_bar, np.exp(-0.5 * t ** 2 * 19.9 - 0.1 * t))
    # Forward marginals: a_cum^2 = (1 - 1e-8) alpha_bar(t_k) / alpha_bar(t_0).
    assert np.allclose(sched.a_cum ** 2, (1 - 1e-8) * sched.alpha_bar / sched.alpha_bar[0])
    assert np.allclose(sched.a_cum ** 2 + sched.sigma_cum ** 2, 1.0)
    assert sched.n_steps == 4 and sched.betas_full[0] == 1e-8


def test_syndiff_pairs_have_the_forward_statistics():
    import torch

    sched = syndiff_vp()
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((20000, 1), 0.5)
    k = torch.full((20000,), 1, dtype=torch.long)
    x_k, x_next = sched.q_sample_pairs(x0, k, generator=g)
    assert x_k.mean().item() == pytest.approx(0.5 * sched.a_cum[1], abs=0.01)
    assert x_k.std().item() == pytest.approx(sched.sigma_cum[1], abs=0.01)
    assert x_next.mean().item() == pytest.approx(0.5 * sched.a_cum[2], abs=0.01)
    assert x_next.std().item() == pytest.approx(sched.sigma_cum[2], abs=0.01)
