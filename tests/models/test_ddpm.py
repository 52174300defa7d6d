"""The conditional DDPM family: registry entry, U-Net layout, training step and sampling."""

from __future__ import annotations

import pytest
import torch

from medxlate.diffusion import SAMPLERS
from medxlate.models.nets.blocks import AttentionBlock, timestep_embedding
from medxlate.models.nets.unet import UNet
from medxlate.models.registry import get_spec
from medxlate.train.context import StepContext

SPEC = get_spec("ddpm")
FAMILY = SPEC.load_entry()
TINY = {**SPEC.config("demo"), "slice_size": [16, 16], "model_channels": 8,
        "channel_mult": [1, 2], "attention_resolutions": [8], "head_channels": 8,
        "diffusion_steps": 20}


def test_registry_entry():
    assert set(SPEC.configs) == {"paper", "demo"} and SPEC.default_sampler == "ddim"
    assert set(SPEC.directions) == {"mri2ct", "ct2mri"}
    assert all(name in SAMPLERS for name in SPEC.samplers)
    assert {"ddpm", "respaced", "ddim", "dpmpp-2m"} <= set(SPEC.samplers)


def test_paper_size_network():
    with torch.device("meta"):
        net = FAMILY.build(SPEC.config("paper"))["unet"]
    n_params = sum(p.numel() for p in net.parameters())
    assert 110e6 < n_params < 140e6          # improved-diffusion's 256 px U-Net scale
    # attention at 16 and 8 px of 256 (ds 16, 32): 2 + 2 down, 1 middle, 3 + 3 up
    assert sum(isinstance(m, AttentionBlock) for m in net.modules()) == 11
    assert net.input_conv.in_channels == 2 and net.out[-1].out_channels == 2


def test_unet_shapes_and_zero_initialised_output():
    net = UNet(in_channels=4, out_channels=2, model_channels=8, channel_mult=(1, 2, 2),
               num_res_blocks=1, attention_ds=(4,), head_channels=8)
    x, cond = torch.randn(3, 1, 32, 24), torch.randn(3, 3, 32, 24)
    out = net(x, torch.tensor([0, 5, 999]), cond)
    assert out.shape == (3, 2, 32, 24)
    assert torch.equal(out, torch.zeros_like(out))     # zero-initialised last conv
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.randn(1, 1, 30, 24), torch.tensor([1]), torch.randn(1, 3, 30, 24))


def test_timestep_embedding_values():
    emb = timestep_embedding(torch.tensor([0, 3]), 6)
    assert torch.allclose(emb[0], torch.tensor([1.0, 1, 1, 0, 0, 0]))
    # frequencies 10000^(-i/3): cos(3), cos(3 * 10000^(-1/3)) ...
    f1 = 10000 ** (-1 / 3)
    assert emb[1, 1].item() == pytest.approx(torch.cos(torch.tensor(3 * f1)).item(), abs=1e-6)
    assert emb[1, 3].item() == pytest.approx(torch.sin(torch.tensor(3.0)).item(), abs=1e-6)


def _batch(k: int = 0, n: int = 4):
    g = torch.Generator().manual_seed(0)
    mr = torch.rand(n, 2 * k + 1, 16, 16, generator=g) * 2 - 1
    return {"mr": mr, "ct": -mr, "mask": torch.ones(n, 1, 16, 16)}


def test_training_step_learns_a_fixed_batch():
    torch.manual_seed(0)
    cfg = {**TINY, "context": 1}
    nets = FAMILY.build(cfg)
    opts = FAMILY.optimizers(nets, {**cfg, "lr": 2e-3})
    batch = _batch(k=1)
    losses = []
    for step in range(40):
        gen = torch.Generator().manual_seed(step % 4)      # the same 4 noise draws, repeated
        ctx = StepContext(opts, torch.device("cpu"), gen, 1, 1.0)
        out = FAMILY.training_step(nets, batch, ctx, cfg)
        assert set(out) == {"loss", "mse", "vb"} and out["vb"] >= 0
        losses.append(out["mse"])
    assert sum(losses[-4:]) < 0.6 * sum(losses[:4])


def test_bin_width_follows_the_target():
    # half of one HU in [-1, 1] units of the dataset's CT window (see test_discretised_ct_nll)
    assert FAMILY.bin_width({"direction": "mri2ct", "nll_bin_width": None}) == 1 / 4024
    window = {"ct": {"kind": "window", "low": -1024.0, "high": 3071.0}}
    assert FAMILY.bin_width({"direction": "mri2ct", "nll_bin_width": None}, window) == 1 / 4095
    assert FAMILY.bin_width({"direction": "ct2mri", "nll_bin_width": None}) == 1 / 255
    assert FAMILY.bin_width({"direction": "ct2mri", "nll_bin_width": 0.01}) == 0.01


@pytest.mark.parametrize("sampler,steps", [("ddpm", None), ("respaced", 5), ("ddim", 4),
                                           ("dpmpp-2m", 4), ("dpmpp-2m-karras", 4)])
def test_translate_with_every_sampler(sampler, steps):
    torch.manual_seed(1)
    nets = FAMILY.build(TINY)
    with torch.no_grad():                           # a non-trivial network output
        for p in nets["unet"].out.parameters():
            p.normal_(0, 0.05)
    nets["unet"].train()
    source = _batch()["mr"][:2]
    calls = []

    def run(seed):
        return FAMILY.translate(nets, source, config=TINY, sampler=sampler, steps=steps,
                                eta=0.0, generator=torch.Generator().manual_seed(seed),
                                callback=lambda i, n, x: calls.append((i, n)))

    y = run(7)
    assert y.shape == (2, 1, 16, 16) and y.min() >= -1 and y.max() <= 1
    assert torch.equal(y, run(7))                   # same generator seed, same output
    assert not torch.equal(y, run(8))
    assert calls[-1][0] == calls[-1][1] - 1          # the callback saw every step
    assert nets["unet"].training                     # the mode is restored
