"""MT-DDPM: Swin window attention against brute force, bias indexing, output channels, the
hybrid loss's gamma, and the sampling defaults."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medxlate.models.nets.swin import (
    MASK_VALUE,
    SwinBlock,
    relative_position_index,
    shifted_window_mask,
)


def test_relative_position_index_by_hand():
    # l = 2: tokens (0,0), (0,1), (1,0), (1,1); index (dy+1)*3 + (dx+1) of pos_i - pos_j.
    expected = torch.tensor([[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]])
    assert torch.equal(relative_position_index(2), expected)
    idx = relative_position_index(7)
    assert idx.shape == (49, 49) and int(idx.min()) == 0 and int(idx.max()) == 13 * 13 - 1
    assert (idx.diagonal() == 6 * 13 + 6).all()          # dy = dx = 0 is the table's centre


def test_shifted_mask_never_crosses_the_wrap_around():
    h = w = 8
    l, s = 4, 2
    mask = shifted_window_mask(h, w, l, s)                # (4 windows, 16, 16)
    assert mask.shape == (4, 16, 16)
    # Rolled position r came from original (r + s) mod H; it wrapped iff r + s >= H.
    for win in range(4):
        wy, wx = divmod(win, 2)
        for i in range(16):
            for j in range(16):
                ri, rj = (wy * l + i // l, wx * l + i % l), (wy * l + j // l, wx * l + j % l)
                same = all((a + s >= n) == (b + s >= n)
                           for a, b, n in ((ri[0], rj[0], h), (ri[1], rj[1], w)))
                assert mask[win, i, j] == (0.0 if same else MASK_VALUE)
    # The top-left window holds no wrapped token: nothing masked there.
    assert (mask[0] == 0).all()


def brute_force_block_attention(block: SwinBlock, x: torch.Tensor) -> torch.Tensor:
    """x + (S)W-MSA(LN(x)) computed token by token in the ORIGINAL image coordinates: token p
    attends to q iff both fall in the same window of the map rolled by -shift and neither
    pair straddles the wrap-around; the bias is read from the table at (dy, dx) + l - 1."""
    b, h, w, c = x.shape
    attn = block.attn
    l, heads = block.window, attn.heads
    s = l // 2 if block.shifted else 0
    d = c // heads
    y = F.layer_norm(x, (c,), block.norm1.weight, block.norm1.bias, block.norm1.eps)
    qkv = y @ attn.qkv.weight.T + attn.qkv.bias
    q, k, v = qkv[..., :c], qkv[..., c:2 * c], qkv[..., 2 * c:]
    out = torch.zeros_like(x)
    coords = [(yy, xx) for yy in range(h) for xx in range(w)]
    for py, px in coords:
        ry, rx = (py - s) % h, (px - s) % w                  # position after the roll
        partners, biases = [], []
        for qy, qx in coords:
            sy, sx = (qy - s) % h, (qx - s) % w
            if (ry // l, rx // l) != (sy // l, sx // l):
                continue
            if (py < s) != (qy < s) or (px < s) != (qx < s):   # came across the wrap
                continue
            partners.append((qy, qx))
            biases.append(attn.bias_table[(ry - sy + l - 1) * (2 * l - 1) + (rx - sx + l - 1)])
        for bi in range(b):
            for hd in range(heads):
                sl = slice(hd * d, (hd + 1) * d)
                qv = q[bi, py, px, sl]
                logits = torch.stack([qv @ k[bi, a, bb, sl] / math.sqrt(d) + biases[n][hd]
                                      for n, (a, bb) in enumerate(partners)])
                weights = torch.softmax(logits, 0)
                out[bi, py, px, sl] = sum(wt * v[bi, a, bb, sl]
                                          for wt, (a, bb) in zip(weights, partners))
    proj = out @ attn.proj.weight.T + attn.proj.bias
    return x + proj


@pytest.mark.parametrize("shifted", [False, True])
def test_swin_block_matches_brute_force_masked_attention(shifted):
    torch.manual_seed(0)
    block = SwinBlock(dim=8, heads=2, window=4, shifted=shifted).double()
    with torch.no_grad():
        block.attn.bias_table.normal_(0, 1.0)             # a bias large enough to matter
        for p in block.mlp[-1].parameters():
            p.zero_()                                       # isolate the attention branch
    x = torch.randn(2, 8, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        got = block(x)
        want = brute_force_block_attention(block, x)
    assert torch.allclose(got, want, atol=1e-10)


def test_shifted_attention_leaves_wrapped_tokens_out():
    # Changing a token on the far side of the wrap-around must not move its rolled
    # window-mates: (0, 0) wraps to the bottom-right window beside (H-1, W-1).
    torch.manual_seed(1)
    block = SwinBlock(dim=4, heads=1, window=4, shifted=True).double().eval()
    x = torch.randn(1, 8, 8, 4, dtype=torch.float64)
    x2 = x.clone()
    x2[0, 7, 7] += torch.tensor([5.0, -3.0, 1.0, 4.0], dtype=torch.float64)  # not wrapped;
    # (7, 7) shares the rolled window with the wrapped (0, 0) and the unwrapped (6, 6)
    with torch.no_grad():
        a, b = block(x), block(x2)
    assert torch.allclose(a[0, 0, 0], b[0, 0, 0], atol=1e-12)
    assert not torch.allclose(a[0, 6, 6], b[0, 6, 6])    # same side, same window: it sees it


def _config(**over):
    from medxlate.models.registry import get_spec
    from medxlate.train.config import resolve_config

    return resolve_config(get_spec("mt-ddpm"), "demo", {"slice_size": [32, 32], **over})


def test_network_outputs_two_c_channels_conditional_and_not():
    from medxlate.models.mt_ddpm.family import FAMILY

    x, t = torch.randn(2, 1, 32, 32), torch.tensor([0, 3999])
    cond_net = FAMILY.build(_config())["net"]
    assert cond_net(x, t, torch.randn(2, 1, 32, 32)).shape == (2, 2, 32, 32)
    assert cond_net.encoder[0].early.in_channels == 2
    free = FAMILY.build(_config(pairing="unconditional", target="ct"))["net"]
    assert free.encoder[0].early.in_channels == 1
    assert free(x, t).shape == (2, 2, 32, 32)


def test_gamma_reaches_the_loss():
    from medxlate.models.mt_ddpm.family import FAMILY

    cfg = _config()
    assert cfg["gamma"] == 0.01 and cfg["diffusion_steps"] == 4000
    torch.manual_seed(0)
    net = FAMILY.build(cfg)["net"]
    batch = {"mr": torch.randn(3, 1, 32, 32), "ct": torch.rand(3, 1, 32, 32) * 2 - 1}

    def terms(gamma):
        return FAMILY.losses(net, batch, {**cfg, "gamma": gamma},
                             torch.Generator().manual_seed(5))

    a, b = terms(0.01), terms(0.5)
    assert torch.allclose(a["mse"], b["mse"]) and torch.allclose(a["vb"], b["vb"])
    # L = L_mean + gamma * T * L_t: the loss moves by (0.5 - 0.01) * 4000 * L_t.
    assert torch.allclose(b["loss"] - a["loss"], 0.49 * 4000 * a["vb"], rtol=1e-5)
    assert torch.allclose(a["loss"], a["mse"] + 0.01 * 4000 * a["vb"], rtol=1e-6)


def test_vlb_term_trains_only_the_variance_channel():
    from medxlate.models.mt_ddpm.family import FAMILY

    cfg = _config()
    torch.manual_seed(0)
    net = FAMILY.build(cfg)["net"]
    batch = {"mr": torch.randn(2, 1, 32, 32), "ct": torch.rand(2, 1, 32, 32) * 2 - 1}
    out = {}

    def hook(_module, _inp, output):
        output.retain_grad()
        out["y"] = output

    handle = net.head.register_forward_hook(hook)
    vb = FAMILY.losses(net, batch, cfg, torch.Generator().manual_seed(1))["vb"]
    vb.sum().backward()
    handle.remove()
    grad = out["y"].grad
    assert float(grad[:, 0].abs().max()) == 0.0           # mean (epsilon) detached
    assert float(grad[:, 1].abs().max()) > 0.0


def test_default_sampler_is_respaced_500_of_4000():
    from medxlate.diffusion import respaced_ddpm
    from medxlate.models.mt_ddpm.family import FAMILY
    from medxlate.models.registry import get_spec

    spec = get_spec("mt-ddpm")
    assert spec.default_sampler == "respaced"
    assert ("none", "ct") in spec.translations and ("mr", "ct") in spec.translations
    fn, kwargs = FAMILY.sampler_kwargs(_config(), "respaced", None, 0.0)
    assert fn is respaced_ddpm and kwargs["steps"] == 500
    _, kwargs = FAMILY.sampler_kwargs(_config(), "ddim", None, 0.0)
    assert kwargs["steps"] is None                        # ddim keeps its own default (50)


def test_generated_slices_are_clipped_and_seeded():
    from medxlate.models.mt_ddpm.family import FAMILY

    cfg = _config(pairing="unconditional", target="ct")
    torch.manual_seed(0)
    nets = FAMILY.build(cfg)
    with torch.no_grad():
        nets["net"].head[-1].bias.fill_(3.0)              # push eps far: x0 would leave [-1, 1]
    run = [FAMILY.generate(nets, 2, config=cfg, sampler="ddim", steps=3, eta=0.0,
                           generator=torch.Generator().manual_seed(9)) for _ in range(2)]
    assert run[0].shape == (2, 1, 32, 32)
    assert float(run[0].abs().max()) <= 1.0
    assert torch.equal(run[0], run[1])


def test_ct_bins_are_one_hu_of_the_dataset_window():
    """Like ddpm: whole HU in the window [low, high] lie 2/(high-low) apart in [-1, 1]."""
    from medxlate.models.mt_ddpm.family import FAMILY as MT

    ct = {"source": "mr", "target": "ct", "direction": "mri2ct", "nll_bin_width": None}
    assert MT.bin_width(ct) == 1 / 4024
    assert MT.bin_width(ct, {"ct": {"low": -1024.0, "high": 3071.0}}) == 1 / 4095
    assert MT.bin_width({**ct, "source": "none"}) == 1 / 4024
    assert MT.bin_width({"source": "ct", "target": "mr", "direction": "ct2mri",
                         "nll_bin_width": None}) == 1 / 255
