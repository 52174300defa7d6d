"""Every sampler recovers a known data point from an oracle model.

An oracle returns the exact eps / x0 / v for data concentrated on x_star, so each sampler's
last step must land on x_star. Tolerances (max abs error): 1e-5 for every Gaussian sampler
(float32 round-off; the last step's posterior has coef1 = 1, coef2 = 0), 1e-6 for the
adversarial chain (x0 oracle, no noise at the last step), exact for one-shot.
"""

import pytest
import torch
from diffusion_toys import PointOracle

from medxlate.diffusion import (
    GaussianDiffusion,
    get_sampler,
    make_betas,
    space_timesteps,
    syndiff_vp,
)

TOL = 1e-5


@pytest.fixture(scope="module")
def x_star():
    g = torch.Generator().manual_seed(7)
    return torch.rand(2, 1, 4, 4, generator=g) * 1.8 - 0.9


def _run(name, x_star, mean_type="eps", learned=False, T=1000, **kw):
    diff = GaussianDiffusion(make_betas("cosine", T), mean_type=mean_type,
                             var_type="learned_range" if learned else "fixed_small")
    oracle = PointOracle(x_star, diff.alphas_cumprod, kind=mean_type, learned=learned)
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(x_star.shape, generator=g)
    calls = []
    out = get_sampler(name)(oracle, x_T, diff, generator=g,
                            callback=lambda i, n, x: calls.append((i, n)), **kw)
    return out, oracle, calls


@pytest.mark.parametrize("mean_type", ["eps", "x0", "v"])
def test_ddpm_all_steps(x_star, mean_type):
    out, oracle, calls = _run("ddpm", x_star, mean_type, T=300)
    assert (out - x_star).abs().max().item() < TOL
    assert oracle.seen == list(range(299, -1, -1))
    assert calls[0] == (0, 300) and calls[-1] == (299, 300)


@pytest.mark.parametrize("mean_type", ["eps", "x0", "v"])
def test_respaced_feeds_original_timesteps(x_star, mean_type):
    out, oracle, calls = _run("respaced", x_star, mean_type, steps=50)
    assert (out - x_star).abs().max().item() < TOL
    assert oracle.seen == space_timesteps(1000, "50")[::-1]
    assert len(calls) == 50


@pytest.mark.parametrize(("mean_type", "eta"), [("eps", 0.0), ("v", 0.0), ("eps", 1.0)])
def test_ddim(x_star, mean_type, eta):
    out, oracle, _ = _run("ddim", x_star, mean_type, steps=50, eta=eta)
    assert (out - x_star).abs().max().item() < TOL
    assert oracle.seen == list(range(980, -1, -20))


@pytest.mark.parametrize("name", ["dpmpp-2m", "dpmpp-2m-karras"])
@pytest.mark.parametrize(("mean_type", "learned"), [("eps", False), ("eps", True), ("v", False)])
def test_dpmpp_2m(x_star, name, mean_type, learned):
    out, oracle, calls = _run(name, x_star, mean_type, learned=learned, steps=20)
    assert (out - x_star).abs().max().item() < TOL
    assert len(oracle.seen) == 20 == len(set(oracle.seen))
    assert oracle.seen[0] == 999 and oracle.seen[-1] == 0
    assert [c[1] for c in calls] == [20] * 20


def test_adversarial_with_x0_oracle(x_star):
    sched = syndiff_vp()
    seen = []

    def generator_net(x, t, cond, z):
        seen.append((int(t[0]), tuple(z.shape), cond))
        return x_star

    g = torch.Generator().manual_seed(0)
    out = get_sampler("adversarial")(generator_net, torch.randn(x_star.shape, generator=g),
                                     sched, cond="mr", generator=g)
    assert (out - x_star).abs().max().item() < 1e-6
    assert seen == [(3, (2, 100), "mr"), (2, (2, 100), "mr"), (1, (2, 100), "mr"),
                    (0, (2, 100), "mr")]


def test_adversarial_posterior_step_matches_eq_13_15():
    """One step by hand: x_k ~ N(coef1 x0_hat + coef2 x_{k+1}, beta_tilde) with the chain's
    a_k (Eq. 13-15, Ozbey et al. 2023). Checked through the mean and spread over samples."""
    sched = syndiff_vp()
    post = sched.posterior()
    x_next = torch.full((20000, 1), 0.4)
    x0_hat = torch.full((20000, 1), -0.2)
    k = torch.full((20000,), 2, dtype=torch.long)
    mean, var, _ = post.q_posterior_mean_variance(x0_hat, x_next, k)
    ab = sched.alpha_bar / sched.alpha_bar[0]
    ab_k, ab_next, beta = ab[2], ab[3], sched.betas[2]
    coef1 = beta * ab_k ** 0.5 / (1 - ab_next)
    coef2 = (1 - ab_k) * (1 - beta) ** 0.5 / (1 - ab_next)
    assert mean[0].item() == pytest.approx(coef1 * -0.2 + coef2 * 0.4, rel=1e-5)
    assert var[0].item() == pytest.approx(beta * (1 - ab_k) / (1 - ab_next), rel=1e-5)


def test_syndiff_posterior_sample_has_the_posterior_moments():
    sched = syndiff_vp()
    post = sched.posterior()
    k = torch.tensor([0] * 5000 + [2] * 20000)
    x_next = torch.full((25000, 1), 0.4)
    x0_hat = torch.full((25000, 1), -0.2, requires_grad=True)
    x_k = sched.sample_posterior(x0_hat, x_next, k, generator=torch.Generator().manual_seed(0))
    mean, var, _ = post.q_posterior_mean_variance(x0_hat[:2].detach(), x_next[:2],
                                                  torch.tensor([0, 2]))
    assert torch.equal(x_k[:5000], mean[0].expand(5000, 1))  # no noise at k = 0
    assert x_k[5000:].mean().item() == pytest.approx(mean[1].item(), abs=0.01)
    assert x_k[5000:].var().item() == pytest.approx(var[1].item(), rel=0.03)
    x_k.sum().backward()  # differentiable for the SynDiff training step
    assert x0_hat.grad[0].item() == pytest.approx(post.posterior_mean_coef1[0], rel=1e-5)


def test_one_shot_calls_the_generator_on_the_condition():
    cond = torch.arange(6.0).reshape(1, 1, 2, 3)
    out = get_sampler("one-shot")(lambda c: 2 * c - 1, None, None, cond=cond)
    assert torch.equal(out, 2 * cond - 1)

