"""SynDiff networks: the NCSN++ generator, FIR resampling and the time discriminator."""

import pytest
import torch
import torch.nn.functional as F

from medxlate.models.nets.fir import fir_blur_pad2, fir_down, fir_up
from medxlate.models.nets.ncsnpp import NCSNpp, NCSNppConfig, layout
from medxlate.models.syndiff.discriminator import TimeDiscriminator, minibatch_stddev

SMALL = NCSNppConfig(image_size=32, nf=8, ch_mult=(1, 2, 2), attn_resolutions=(8,),
                     nz=10, z_emb_dim=16, n_mlp=1)


def upfirdn_reference(x, up, down, pad):
    """upfirdn2d as defined by StyleGAN2: zero-insert, pad, correlate with the normalised
    [1,3,3,1] kernel (x up**2), then keep every ``down``-th sample (full computation)."""
    b, c, h, w = x.shape
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=x.dtype)
    k2 = torch.outer(k, k) / 64 * up * up
    y = x.reshape(b * c, 1, h, w)
    if up > 1:
        z = y.new_zeros(b * c, 1, h * up, w * up)
        z[:, :, ::up, ::up] = y
        y = z
    y = F.pad(y, (pad[0], pad[1], pad[0], pad[1]))
    y = F.conv2d(y, k2.flip(0, 1)[None, None])[:, :, ::down, ::down]
    return y.reshape(b, c, y.shape[-2], y.shape[-1])


def test_fir_resampling_equals_upfirdn():
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    assert torch.allclose(fir_down(x), upfirdn_reference(x, 1, 2, (1, 1)), atol=1e-12)
    assert torch.allclose(fir_up(x), upfirdn_reference(x, 2, 1, (2, 1)), atol=1e-12)
    assert torch.allclose(fir_blur_pad2(x), upfirdn_reference(x, 1, 1, (2, 2)), atol=1e-12)
    # Interior values by hand: a constant image stays constant away from the border.
    ones = torch.ones(1, 1, 8, 8)
    assert float(fir_down(ones)[0, 0, 2, 2]) == 1.0
    assert float(fir_up(ones)[0, 0, 3, 4]) == 1.0
    assert float(fir_up(ones)[0, 0, 0, 4]) == 0.75   # (3 * 1 + 1 * 0) / 4 at the border


def test_paper_generator_has_39_7_million_parameters():
    with torch.device("meta"):
        g = NCSNpp(NCSNppConfig())
    n = sum(p.numel() for p in g.parameters())
    assert n == 39_724_673          # the reference's 39,725,250 less its unused 2nd output
    kinds = [kind for _, kind, _ in layout(NCSNppConfig())]
    assert len(kinds) == 56 and kinds.count("attn") == 4 and kinds.count("down") == 5


def test_generator_output_shape_range_and_conditioning():
    torch.manual_seed(0)
    g = NCSNpp(SMALL).eval()
    # The zero-init (1e-10) output layers would hide any conditioning: randomise all weights.
    with torch.no_grad():
        for p in g.parameters():
            p.normal_(0, 0.3)
    x = torch.randn(2, 2, 32, 32)
    z = torch.randn(2, 10)
    t = torch.tensor([0, 0])
    with torch.no_grad():
        y = g(x, t, z)
        assert y.shape == (2, 1, 32, 32)
        assert float(y.abs().max()) <= 1.0 and float(y.std()) > 0.05
        assert float((g(x, torch.tensor([3, 3]), z) - y).abs().max()) > 1e-3   # time
        assert float((g(x, t, torch.randn(2, 10)) - y).abs().max()) > 1e-3    # latent
        assert float((g(x.flip(1), t, z) - y).abs().max()) > 1e-3             # source
        # Same inputs -> same outputs, batch elements independent; the CPU chunking
        # (one slice at a time) equals a whole-batch evaluation.
        assert torch.allclose(g(x[:1], t[:1], z[:1]), y[:1], atol=1e-5)
        g.cpu_chunk = 1
        assert torch.allclose(g(x, t, z), y, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of 4"):
        g(torch.zeros(1, 2, 30, 30), t[:1], z[:1])


def test_generator_trains_and_grad_paths_match_inference():
    torch.manual_seed(1)
    g = NCSNpp(SMALL)
    with torch.no_grad():
        for p in g.parameters():
            p.normal_(0, 0.2)
    x, t, z = torch.randn(2, 2, 32, 32), torch.tensor([1, 2]), torch.randn(2, 10)
    y = g(x, t, z)                       # autograd path (out-of-place ops)
    y.mean().backward()
    assert all(p.grad is not None for p in g.parameters())
    with torch.inference_mode():
        y2 = g(x, t, z)                  # inference path (in-place ops)
    assert torch.allclose(y.detach(), y2, atol=1e-5)


def test_discriminator_shape_time_and_stddev():
    torch.manual_seed(0)
    d = TimeDiscriminator(image_size=32, ngf=4, t_emb_dim=16)
    with torch.no_grad():
        for p in d.parameters():
            p.normal_(0, 0.2)
    a, b = torch.randn(4, 1, 32, 32), torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        out = d(a, torch.tensor([0, 1, 2, 3]), b)
        assert out.shape == (4, 1)
        assert float((d(a, torch.tensor([3, 3, 3, 3]), b) - out).abs().max()) > 1e-4
    with pytest.raises(ValueError, match="4 \\* 2\\*\\*k"):
        TimeDiscriminator(image_size=48)
    # Minibatch stddev: groups of 2 samples; a constant batch has std ~ 1e-4 (sqrt(1e-8)).
    h = torch.stack([torch.zeros(3, 2, 2), torch.full((3, 2, 2), 2.0)])
    s = minibatch_stddev(h)
    assert s.shape == (2, 4, 2, 2)
    assert torch.allclose(s[:, 3], torch.ones(2, 2, 2))          # std of {0, 2} is 1
    assert float(minibatch_stddev(torch.ones(3, 1, 1, 1))[0, 1, 0, 0]) == pytest.approx(1e-4)


def test_fast_generator_equals_reference_style_forward():
    """The benchmark's reference-style pass (upfirdn2d native, einsum attention, NCHW) and
    the optimised network agree on the same weights and noise."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "syndiff_generator.py"
    spec = importlib.util.spec_from_file_location("syndiff_generator_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    torch.manual_seed(0)
    g = NCSNpp(SMALL).eval()
    with torch.no_grad():
        for p in g.parameters():
            p.normal_(0, 0.3)
        x, t, z = torch.randn(3, 2, 32, 32), torch.tensor([0, 1, 3]), torch.randn(3, 10)
        ours = g(x, t, z)
        ref = bench.reference_forward(g, x, t, z)
        one = g(x[1:2], t[1:2], z[1:2])   # the fused single-sample path
    assert float(ours.std()) > 0.1
    assert float((ours - ref).abs().max()) < 1e-4
    assert float((one - ref[1:2]).abs().max()) < 1e-4


def test_fir_kernels_made_in_inference_mode_still_train():
    # A first call under inference_mode caches the FIR kernel; a later training forward must
    # still be able to save it for backward (regression: the cache held an inference tensor).
    from medxlate.models.nets import fir

    fir._kernels.clear()
    with torch.inference_mode():
        fir.fir_down(torch.ones(1, 5, 8, 8))
    x = torch.ones(1, 5, 8, 8, requires_grad=True)
    fir.fir_down(x).sum().backward()
    # per axis the 4 outputs see taps summing to 7/8 (one tap off the edge), 1, 1, 7/8
    assert x.grad is not None and float(x.grad.sum()) == pytest.approx(5 * (7 / 8 + 2 + 7 / 8) ** 2)
