"""The latent DiT: patchify, sin-cos embeddings, adaLN-Zero, conditioning modes, configs."""

from __future__ import annotations

import math

import pytest
import torch

from medxlate.errors import UsageError
from medxlate.models.dit.family import FAMILY, ConditionalDiT
from medxlate.models.dit.net import DiT, DiTBlock, patchify, sincos_2d, unpatchify
from medxlate.models.registry import get_spec
from medxlate.models.vae.autoencoder import demo_arch

SPEC = get_spec("dit")


def test_registry_entry_and_configs():
    assert SPEC.default_sampler == "respaced"
    assert set(SPEC.samplers) == {"ddpm", "respaced", "ddim", "dpmpp-2m"}
    assert set(SPEC.translations) == {("mr", "ct"), ("ct", "mr")}
    assert {"paper", "ablation", "dit-s2", "dit-b2", "demo"} == set(SPEC.configs)
    paper = SPEC.config("paper")
    assert (paper["depth"], paper["hidden"], paper["patch"], paper["slice_size"]) == \
        (16, 512, 2, [224, 224])
    assert SPEC.config("ablation")["depth"] == 7
    assert (paper["lr"], paper["weight_decay"], paper["ema"]) == (1e-4, 0.0, 0.9999)


@pytest.mark.parametrize("name,millions", [("dit-s2", 33), ("dit-b2", 130)])
def test_dit_sizes_match_the_paper(name, millions):
    # Peebles & Xie, Table 1: DiT-S/2 33 M and DiT-B/2 130 M parameters (at 28x28 latents
    # without the class embedding the counts move by well under 1 M).
    cfg = {**SPEC.config(name), "vae_arch": demo_arch()}
    with torch.device("meta"):
        net = FAMILY.build(cfg)["dit"]
    n = sum(p.numel() for p in net.dit.parameters()) + \
        sum(p.numel() for p in net.t_embedder.parameters())
    assert abs(n / 1e6 - millions) < 1.0


def test_patchify_round_trip_and_layout():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    tokens = patchify(x, 2)
    assert tokens.shape == (2, 6, 12)
    # token 1 = rows 0-1, cols 2-3; inside a patch: (row, col, channel), channels last
    assert tokens[0, 1, :3].tolist() == [x[0, c, 0, 2].item() for c in range(3)]
    assert tokens[0, 1, 3:6].tolist() == [x[0, c, 0, 3].item() for c in range(3)]
    assert tokens[0, 1, 6:9].tolist() == [x[0, c, 1, 2].item() for c in range(3)]
    assert torch.equal(unpatchify(tokens, 2, 3, 4, 6), x)


def test_patch_embedding_uses_the_same_token_order():
    net = DiT(3, 6, 8, 2, 16, 1, 2, 16)
    x = torch.randn(2, 3, 8, 8)
    w = net.x_embedder.weight.permute(0, 2, 3, 1).reshape(16, -1)   # (D, p*p*C) row, col, ch
    expected = patchify(x, 2) @ w.t() + net.x_embedder.bias + net.pos_embed
    assert torch.allclose(net.tokens(x), expected, atol=1e-5)


def test_sincos_2d_values():
    emb = sincos_2d(8, 3)                       # 9 tokens; 4 channels for columns, 4 for rows
    token = 1 * 3 + 2                           # row 1, column 2
    omega = [1.0, 1.0 / 100.0]                  # 10000^(-i/2) for i = 0, 1
    expected = [math.sin(2 * omega[0]), math.sin(2 * omega[1]), math.cos(2 * omega[0]),
                math.cos(2 * omega[1]), math.sin(1 * omega[0]), math.sin(1 * omega[1]),
                math.cos(1 * omega[0]), math.cos(1 * omega[1])]
    assert emb[token].tolist() == pytest.approx(expected, abs=1e-12)


def test_adaln_zero_is_the_identity_at_initialisation():
    torch.manual_seed(0)
    net = DiT(4, 8, 8, 2, 32, 3, 4, 32)
    x, c = torch.randn(2, 4, 8, 8), torch.randn(2, 32)
    h = net.tokens(x)
    for block in net.blocks:
        assert torch.equal(block(h, c), h)
    assert torch.equal(net(x, c), torch.zeros(2, 8, 8, 8))


def test_adaln_block_against_a_written_out_reference():
    torch.manual_seed(1)
    block = DiTBlock(8, 2, 6)
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x, c = torch.randn(2, 5, 8), torch.randn(2, 6)
    # Reference: DiT's equations written directly with matmuls.
    mod = torch.nn.functional.silu(c) @ block.adaLN_modulation[1].weight.t() \
        + block.adaLN_modulation[1].bias
    sa, ca, ga, sm, cm, gm = mod.split(8, dim=1)

    def ln(v):
        return (v - v.mean(-1, keepdim=True)) / torch.sqrt(v.var(-1, unbiased=False,
                                                                 keepdim=True) + 1e-6)

    def attn(v):
        qkv = v @ block.attn.qkv.weight.t() + block.attn.qkv.bias
        q, k, w = qkv.split(8, dim=-1)
        outs = []
        for h in range(2):
            sl = slice(4 * h, 4 * h + 4)
            a = torch.softmax(q[..., sl] @ k[..., sl].transpose(1, 2) / 2.0, dim=-1)
            outs.append(a @ w[..., sl])
        return torch.cat(outs, -1) @ block.attn.proj.weight.t() + block.attn.proj.bias

    def mlp(v):
        fc1, fc2 = block.mlp[0], block.mlp[2]
        u = v @ fc1.weight.t() + fc1.bias
        u = 0.5 * u * (1 + torch.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u ** 3)))
        return u @ fc2.weight.t() + fc2.bias

    h = x + ga[:, None] * attn(ln(x) * (1 + ca[:, None]) + sa[:, None])
    h = h + gm[:, None] * mlp(ln(h) * (1 + cm[:, None]) + sm[:, None])
    assert torch.allclose(block(x, c), h, atol=1e-5)


@pytest.mark.parametrize("mode,in_channels", [("concat", 8), ("pooled", 4)])
def test_conditioning_modes_shapes(mode, in_channels):
    net = ConditionalDiT(4, 8, 2, 32, 2, 2, mode)
    assert net.dit.x_embedder.in_channels == in_channels
    assert (net.pool is not None) == (mode == "pooled")
    for block in net.dit.blocks:
        torch.nn.init.normal_(block.adaLN_modulation[-1].weight, std=0.1)
    torch.nn.init.normal_(net.dit.final_layer.linear.weight, std=0.1)
    x, t = torch.randn(3, 4, 8, 8), torch.tensor([0, 10, 999])
    z1, z2 = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    out = net(x, t, z1)
    assert out.shape == (3, 8, 8, 8)
    assert not torch.allclose(out, net(x, t, z2))        # the source latent matters
    with pytest.raises(UsageError, match="concat, pooled"):
        ConditionalDiT(4, 8, 2, 32, 2, 2, "cross")


def test_translate_every_sampler_shape():
    cfg = {**SPEC.config("demo"), "vae_arch": demo_arch(), "slice_size": [32, 32],
           "depth": 1, "hidden": 16, "heads": 2, "diffusion_steps": 100}
    nets = FAMILY.build(cfg)
    src = torch.rand(2, 1, 32, 32) * 2 - 1
    for sampler, steps in (("ddpm", None), ("respaced", 5), ("ddim", 3), ("dpmpp-2m", 3)):
        out = FAMILY.translate(nets, src, config=cfg, sampler=sampler, steps=steps, eta=0.0,
                               generator=torch.Generator().manual_seed(0))
        assert out.shape == (2, 1, 32, 32) and out.abs().max() <= 1.0
