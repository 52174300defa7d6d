"""Gaussian diffusion maths: posterior, parametrisations, variances, KL/NLL, hybrid loss."""

import math

import numpy as np
import pytest
import torch

from medxlate.diffusion import (
    GaussianDiffusion,
    discretized_gaussian_nll,
    make_betas,
    normal_kl,
)


def _phi(x):
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


@pytest.fixture(scope="module")
def diff():
    return GaussianDiffusion(make_betas("linear", 100), clip_x0=False)


def test_posterior_is_gaussian_conditioning(diff):
    # q(x_{t-1} | x_t, x0) by hand: prior N(sqrt(ab_prev) x0, 1 - ab_prev), likelihood
    # x_t | x_{t-1} ~ N(sqrt(alpha_t) x_{t-1}, beta_t).
    t, x0, x_t = 30, 0.4, -0.7
    ab_prev, a, b = diff.alphas_cumprod[t - 1], diff.alphas[t], diff.betas[t]
    prec = 1 / (1 - ab_prev) + a / b
    mean = (math.sqrt(ab_prev) * x0 / (1 - ab_prev) + math.sqrt(a) * x_t / b) / prec
    m, v, log_v = diff.q_posterior_mean_variance(
        torch.tensor([[x0]]), torch.tensor([[x_t]]), torch.tensor([t]))
    assert m.item() == pytest.approx(mean, rel=1e-5)
    assert v.item() == pytest.approx(1 / prec, rel=1e-5)
    assert log_v.item() == pytest.approx(math.log(1 / prec), rel=1e-5)
    # Index 0: the variance is 0, its log is clipped to beta_tilde_1's.
    assert diff.posterior_variance[0] == 0
    assert diff.posterior_log_variance_clipped[0] == pytest.approx(
        math.log(diff.posterior_variance[1]))


def test_parametrisations_round_trip(diff):
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(4, 1, 3, 3, generator=g) * 2 - 1
    eps = torch.randn(4, 1, 3, 3, generator=g)
    t = torch.tensor([0, 10, 50, 99])
    x_t = diff.q_sample(x0, t, eps)
    ab = torch.as_tensor(diff.alphas_cumprod[t.numpy()], dtype=torch.float32).reshape(4, 1, 1, 1)
    assert torch.allclose(x_t, ab.sqrt() * x0 + (1 - ab).sqrt() * eps)
    v = diff.v_from_x0_eps(x0, eps, t)
    assert torch.allclose(diff.x0_from_v(x_t, t, v), x0, atol=1e-5)
    assert torch.allclose(diff.eps_from_v(x_t, t, v), eps, atol=1e-5)
    assert torch.allclose(diff.x0_from_eps(x_t, t, eps), x0, atol=2e-4)
    assert torch.allclose(diff.eps_from_x0(x_t, t, x0), eps, atol=2e-4)


def test_p_mean_variance_clips_x0_and_rederives_eps():
    d = GaussianDiffusion(make_betas("linear", 100), mean_type="x0", clip_x0=True)
    x_t = torch.tensor([[0.3], [0.3]])
    t = torch.tensor([40, 40])
    out = d.p_mean_variance(torch.tensor([[1.7], [0.5]]), x_t, t)
    assert out["pred_x0"].flatten().tolist() == pytest.approx([1.0, 0.5])
    ab = d.alphas_cumprod[40]
    assert out["eps"][0].item() == pytest.approx((0.3 - math.sqrt(ab)) / math.sqrt(1 - ab),
                                                 rel=1e-5)
    mean = d.posterior_mean_coef1[40] * 1.0 + d.posterior_mean_coef2[40] * 0.3
    assert out["mean"][0].item() == pytest.approx(mean, rel=1e-5)
    assert out["variance"][0].item() == pytest.approx(d.posterior_variance[40], rel=1e-5)


def test_fixed_large_and_learned_range():
    betas = make_betas("linear", 100)
    large = GaussianDiffusion(betas, var_type="fixed_large")
    t = torch.tensor([0, 5])
    var, _ = large.model_log_variance(None, t, 2)
    assert var.flatten().tolist() == pytest.approx(
        [large.posterior_variance[1], betas[5]], rel=1e-5)
    learned = GaussianDiffusion(betas, var_type="learned_range")
    v = torch.tensor([[-0.5], [0.5]])
    _, log_var = learned.model_log_variance(v, t, 2)
    lo, hi = learned.posterior_log_variance_clipped, np.log(betas)
    assert log_var.flatten().tolist() == pytest.approx(
        [0.25 * hi[0] + 0.75 * lo[0], 0.75 * hi[5] + 0.25 * lo[5]], rel=1e-5)
    with pytest.raises(ValueError, match="2C=2 output channels"):
        learned.p_mean_variance(torch.zeros(2, 1), torch.zeros(2, 1), t)


def test_normal_kl_by_hand():
    kl = normal_kl(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(1.0),
                   torch.tensor(math.log(4.0)))
    assert kl.item() == pytest.approx(math.log(2) + 2 / 8 - 0.5, rel=1e-6)


def test_discretized_nll_by_hand():
    s = 0.1
    x = torch.tensor([0.0, -1.0, 1.0, 0.5])
    mean = torch.tensor([0.0, -0.95, 0.9, 0.0])
    nll = discretized_gaussian_nll(x, mean, torch.full((4,), math.log(s)))
    d = 1 / 255
    expected = [
        -math.log(_phi(d / s) - _phi(-d / s)),
        -math.log(_phi((-1 + d + 0.95) / s)),
        -math.log(1 - _phi((1 - d - 0.9) / s)),
        -math.log(_phi((0.5 + d) / s) - _phi((0.5 - d) / s)),
    ]
    assert nll.tolist() == pytest.approx(expected, rel=1e-4)
    # A 12-bit CT grid: bins of half-width 1/4095.
    ct = discretized_gaussian_nll(torch.tensor([0.0]), torch.tensor([0.0]),
                                  torch.tensor([math.log(s)]), bin_width=1 / 4095)
    assert ct.item() == pytest.approx(
        -math.log(_phi(1 / 4095 / s) - _phi(-1 / 4095 / s)), rel=1e-4)


def test_vb_terms_are_kl_in_bits_and_nll_at_zero(diff):
    x0 = torch.tensor([[0.2], [0.2]])
    x_t = torch.tensor([[0.1], [0.1]])
    t = torch.tensor([0, 20])
    d = GaussianDiffusion(diff.betas, mean_type="x0", var_type="fixed_small", clip_x0=False)
    wrong = torch.tensor([[0.22], [0.22]])
    vb = d.vb_terms_bpd(wrong, x0, x_t, t)
    # t = 20: both Gaussians share beta_tilde; KL = (mu_q - mu_p)^2 / (2 var).
    c1, var = d.posterior_mean_coef1[20], d.posterior_variance[20]
    assert vb[1].item() == pytest.approx((c1 * 0.02) ** 2 / (2 * var) / math.log(2), rel=1e-4)
    # t = 0: mean = x0_hat = 0.22, std = sqrt(beta_tilde_1).
    s = math.sqrt(d.posterior_variance[1])
    p = _phi((0.2 + 1 / 255 - 0.22) / s) - _phi((0.2 - 1 / 255 - 0.22) / s)
    assert vb[0].item() == pytest.approx(-math.log(p) / math.log(2), rel=1e-4)
    exact = d.vb_terms_bpd(x0, x0, x_t, t)
    assert exact[1].item() == pytest.approx(0.0, abs=1e-6)


class _TwoHeads(torch.nn.Module):
    """Mean head a * x_t, variance head tanh(b): one parameter each."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(0.7))
        self.b = torch.nn.Parameter(torch.tensor(0.1))

    def forward(self, x_t, t_model, cond):
        return torch.cat([self.a * x_t, torch.tanh(self.b) * torch.ones_like(x_t)], dim=1)


def test_hybrid_loss_freezes_the_mean_in_the_vlb():
    d = GaussianDiffusion(make_betas("linear", 50), var_type="learned_range", clip_x0=False)
    net = _TwoHeads()
    g = torch.Generator().manual_seed(3)
    x0 = torch.rand(8, 1, 2, 2, generator=g) * 2 - 1
    t = torch.tensor([0, 1, 5, 10, 20, 30, 40, 49])
    noise = torch.randn(8, 1, 2, 2, generator=g)
    terms = d.training_losses(net, x0, t, noise=noise, loss="hybrid", vlb_weight=0.01)
    assert torch.allclose(terms["loss"], terms["mse"] + 0.01 * 50 * terms["vb"])
    grad_a_vb, grad_b_vb = torch.autograd.grad(terms["vb"].sum(), [net.a, net.b],
                                               retain_graph=True, allow_unused=True)
    assert grad_a_vb is None or grad_a_vb.item() == 0.0
    assert abs(grad_b_vb.item()) > 1e-4
    grad_a_mse = torch.autograd.grad(terms["mse"].sum(), net.a, retain_graph=True)[0]
    grad_a_loss = torch.autograd.grad(terms["loss"].sum(), net.a)[0]
    assert grad_a_loss.item() == pytest.approx(grad_a_mse.item(), rel=1e-6)
    # The MSE is on noise for mean_type="eps".
    x_t = d.q_sample(x0, t, noise)
    assert terms["mse"][3].item() == pytest.approx(
        ((0.7 * x_t[3] - noise[3]) ** 2).mean().item(), rel=1e-5)


def test_mse_targets_and_loss_checks():
    betas = make_betas("linear", 50)
    x0 = torch.full((2, 1), 0.5)
    t = torch.tensor([10, 40])
    noise = torch.tensor([[1.0], [-1.0]])
    d = GaussianDiffusion(betas, mean_type="v")
    zero = d.training_losses(lambda x, tm, c: torch.zeros_like(x), x0, t, noise=noise)
    v = d.v_from_x0_eps(x0, noise, t)
    assert zero["mse"].tolist() == pytest.approx((v ** 2).flatten().tolist(), rel=1e-6)
    x0_model = GaussianDiffusion(betas, mean_type="x0")
    perfect = x0_model.training_losses(lambda x, tm, c: torch.full_like(x, 0.5), x0, t)
    assert perfect["loss"].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="loss='hybrid' with var_type='learned_range'"):
        d.training_losses(lambda x, tm, c: x, x0, t, loss="hybrid")
