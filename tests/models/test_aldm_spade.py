"""MS-SPADE (Eq. 1, Kim & Park 2024): per-target heads, per-sample switching, statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medxlate.errors import UsageError
from medxlate.models.aldm.family import target_index
from medxlate.models.aldm.spade import MSSPADE, SPADENet


def _net(seed: int = 0) -> SPADENet:
    torch.manual_seed(seed)
    return SPADENet(latent_channels=3, n_targets=2, channels=(4, 8, 8, 8, 8, 4), hidden=4).eval()


def test_targets_switch_the_output_and_each_target_is_deterministic():
    net = _net()
    z = torch.randn(1, 3, 6, 6, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a0, b0 = net(z, torch.tensor([0])), net(z, torch.tensor([0]))
        a1 = net(z, torch.tensor([1]))
    assert torch.equal(a0, b0)
    assert (a0 - a1).abs().max() > 1e-3


def test_each_sample_of_a_batch_uses_its_own_target_head():
    net = _net()
    z = torch.randn(3, 3, 6, 6, 6, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        mixed = net(z, torch.tensor([1, 0, 1]))
        alone = torch.cat([net(z[i:i + 1], torch.tensor([k])) for i, k in enumerate([1, 0, 1])])
    torch.testing.assert_close(mixed, alone, rtol=0, atol=1e-5)


def test_unknown_target_is_a_usage_error_and_bad_indices_are_refused():
    config = {"targets": ["t2", "ct"], "target": "t2"}
    assert target_index(config) == 0 and target_index(config, "ct") == 1
    with pytest.raises(UsageError, match="learned the targets t2, ct, not 'flair'"):
        target_index(config, "flair")
    with pytest.raises(ValueError, match="target index outside"):
        _net()(torch.zeros(1, 3, 4, 4, 4), torch.tensor([2]))


def test_ms_spade_normalises_each_sample_and_channel_then_applies_its_heads():
    torch.manual_seed(0)
    norm = MSSPADE(channels=2, n_targets=2, hidden=3, eps=1e-5)
    g, b = {0: (1.5, -0.25), 1: (0.5, 2.0)}, None
    with torch.no_grad():
        for k, (gamma, beta) in g.items():   # constant heads: gamma(h) = gamma, beta(h) = beta
            norm.gamma[k].weight.zero_()
            norm.gamma[k].bias.fill_(gamma)
            norm.beta[k].weight.zero_()
            norm.beta[k].bias.fill_(beta)
    rng = np.random.default_rng(0)
    h = rng.normal(3.0, 2.0, size=(2, 2, 5, 4, 3)) * np.array([1.0, 4.0])[None, :, None, None, None]
    with torch.no_grad():
        out = norm(torch.tensor(h, dtype=torch.float32), torch.tensor([0, 1])).numpy()
    for i, k in enumerate([0, 1]):
        gamma, beta = g[k]
        for c in range(2):
            v = h[i, c]
            expected = gamma * (v - v.mean()) / np.sqrt(v.var() + 1e-5) + beta
            np.testing.assert_allclose(out[i, c], expected, rtol=1e-4, atol=1e-4)
            assert out[i, c].mean() == pytest.approx(beta, abs=1e-4)
            assert out[i, c].std() == pytest.approx(gamma, rel=1e-3)
    del b


def test_the_ldm_diffuses_latents_times_latent_scale():
    """With latent_scale s the UNet sees s * z_src^tar beside z_t, and what the sampler ends
    on is divided by s before decoding. Oracle: DDIM (eta 0) with eps == 0 keeps
    x0 = z_T / sqrt(alpha_bar[t_first]) at every step."""
    from medxlate.models.aldm import CONFIGS
    from medxlate.models.aldm.family import FAMILY, diffusion_from
    from tests.models.aldm_helpers import TINY_ALDM

    config = {**CONFIGS["demo"], **TINY_ALDM, "latent_scale": 4.0, "target": "ct"}
    torch.manual_seed(0)
    nets = {k: v.eval() for k, v in FAMILY.build(config).items()}
    with torch.no_grad():
        for p in nets["unet"].parameters():
            p.zero_()                                  # eps_theta == 0
    seen, decoded = {}, {}
    def record(_module, args, _out):
        seen.setdefault("x_t", args)               # the first call: t = t_first

    nets["unet"].register_forward_hook(record)
    decode = nets["vqvae"].decode_stage_2_outputs

    def decode_and_record(z):
        decoded["z"] = z
        return decode(z)

    nets["vqvae"].decode_stage_2_outputs = decode_and_record
    source = torch.rand(1, 1, 16, 16, 16) * 2 - 1
    FAMILY.translate(nets, source, config=config, sampler="ddim", steps=3, eta=0.0,
                     generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        z_src = nets["vqvae"].encode_stage_2_inputs(source)
        want_cond = 4.0 * nets["spade"](z_src, torch.tensor([1]))
    x, t = seen["x_t"][0], seen["x_t"][1]
    c = int(config["embedding_dim"])
    torch.testing.assert_close(x[:, c:], want_cond, rtol=0, atol=1e-6)
    z_T = torch.randn(z_src.shape, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(x[:, :c], z_T, rtol=0, atol=0)
    ab = float(diffusion_from(config).alphas_cumprod[int(t[0])])
    torch.testing.assert_close(decoded["z"], z_T / np.sqrt(ab) / 4.0, rtol=1e-5, atol=1e-6)
