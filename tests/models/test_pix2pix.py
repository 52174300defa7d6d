"""pix2pix: U-Net and PatchGAN shapes and sizes, losses on toy tensors, training steps."""

from __future__ import annotations

import math

import pytest
import torch

from medxlate.models.nets.gan_losses import gan_loss
from medxlate.models.nets.patchgan import PatchGAN, receptive_field
from medxlate.models.nets.unet_generator import UnetGenerator
from medxlate.models.pix2pix.family import FAMILY
from medxlate.models.registry import get_spec
from tests.models.gan_helpers import RecordingContext

TINY = {**get_spec("pix2pix").config("demo"), "ngf": 4, "ndf": 4, "n_downs": 4,
        "slice_size": [16, 16], "d_layers": 2}


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_paper_sizes_match_the_reference_networks():
    # The pix2pix/CycleGAN reference prints 54.414 M (U-Net-256, 3->3) and 2.769 M (its
    # 70x70 PatchGAN on 6 channels, batch norm).
    assert round(n_params(UnetGenerator(3, 3)) / 1e6, 3) == 54.414
    assert round(n_params(PatchGAN(6, norm="batch")) / 1e6, 3) == 2.769


def test_unet_shapes_and_levels():
    g = UnetGenerator(3, 1, ngf=4, n_downs=5)
    out = g(torch.randn(2, 3, 64, 32))
    assert out.shape == (2, 1, 64, 32)
    assert out.abs().max() <= 1.0
    with pytest.raises(ValueError, match="multiple of 32"):
        g(torch.randn(1, 3, 48, 48))


def test_patchgan_output_and_receptive_field():
    d = PatchGAN(2, ndf=4, norm="none")
    assert d(torch.zeros(1, 2, 256, 256)).shape == (1, 1, 30, 30)
    x = torch.zeros(1, 2, 160, 160, requires_grad=True)
    y = d(x)
    c = y.shape[-1] // 2
    y[0, 0, c, c].backward()
    cols = torch.nonzero(x.grad[0].abs().sum((0, 1)) > 0)
    assert receptive_field(3) == 70 == int(cols.max() - cols.min() + 1)


def test_gan_losses_on_known_logits():
    logits = torch.tensor([0.0, 2.0])
    want_real = (math.log(2) + math.log(1 + math.exp(-2))) / 2
    assert gan_loss(logits, True) == pytest.approx(want_real, rel=1e-6)
    assert gan_loss(logits, False, "lsgan") == pytest.approx((0 + 4) / 2)
    assert gan_loss(logits, True, "lsgan") == pytest.approx((1 + 1) / 2)


def test_generator_loss_weights_l1_by_100():
    torch.manual_seed(0)
    nets = FAMILY.build(TINY)
    src = torch.randn(2, 1, 16, 16)
    fake = nets["G"](src)
    target = (fake + 0.1).detach()
    loss, logs = FAMILY.g_loss(nets, src, target, fake, TINY)
    assert logs["g_l1"] == pytest.approx(0.1, abs=1e-6)
    assert loss.item() == pytest.approx(logs["g_gan"] + 10.0, abs=1e-4)
    d_loss = FAMILY.d_loss(nets, src, target, fake, TINY)
    assert d_loss.item() > 0
    assert all(p.grad is None for p in nets["G"].parameters())
    d_loss.backward()
    assert all(p.grad is None for p in nets["G"].parameters())  # fake was detached


def test_training_step_updates_d_then_g_without_leaking_gradients():
    torch.manual_seed(0)
    cfg = {**TINY, "context": 1}
    nets = FAMILY.build(cfg)
    assert nets["G"].down[0][0].in_channels == 3 and nets["D"].model[0].in_channels == 4
    ctx = RecordingContext(FAMILY.optimizers(nets, cfg), nets)
    batch = {"mr": torch.rand(4, 3, 16, 16) * 2 - 1, "ct": torch.rand(4, 3, 16, 16) * 2 - 1}
    before = [p.clone() for p in nets["G"].parameters()]
    logs = FAMILY.training_step(nets, batch, ctx, cfg)
    assert set(logs) == {"g_gan", "g_l1", "d"} and all(math.isfinite(v) for v in logs.values())
    assert [c[0] for c in ctx.calls] == ["D", "G"]
    assert ctx.calls[0][1] == {"G": False, "D": True}
    assert ctx.calls[1][1] == {"G": True, "D": False}
    assert any(not torch.equal(a, b) for a, b in zip(before, nets["G"].parameters()))


def test_a_few_steps_reduce_the_l1_loss():
    torch.manual_seed(0)
    nets = FAMILY.build(TINY)
    ctx = RecordingContext(FAMILY.optimizers(nets, {**TINY, "lr": 2e-3}), nets)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    mr = 0.8 * torch.stack([torch.sin(3 * xx * (i + 1) / 4 + yy) for i in range(4)])[:, None]
    batch = {"mr": mr, "ct": -mr}
    l1 = [FAMILY.training_step(nets, batch, ctx, TINY)["g_l1"] for _ in range(20)]
    assert l1[-1] < 0.7 * l1[0]


def test_translate_dropout_noise_is_seeded():
    torch.manual_seed(0)
    nets = FAMILY.build(TINY)
    nets["G"].eval()
    x = torch.randn(2, 1, 16, 16)
    cfg = {**TINY, "test_dropout": True}

    def draw(seed):
        return FAMILY.translate(nets, x, config=cfg, sampler="one-shot", steps=None, eta=0.0,
                                generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(1), draw(1)) and not torch.equal(draw(1), draw(2))
    plain = FAMILY.translate(nets, x, config=TINY, sampler="one-shot", steps=None, eta=0.0,
                             generator=None)
    assert torch.equal(plain, nets["G"](x))
    from medxlate.errors import UsageError
    with pytest.raises(UsageError):
        FAMILY.translate(nets, x, config=TINY, sampler="ddim", steps=None, eta=0.0,
                         generator=None)


def test_engine_trains_pix2pix_and_synthesize_loads_it(tmp_path):
    from safetensors.torch import load_file

    from medxlate.synth.model import load_model
    from medxlate.train import train
    from tests.train.conftest import make_dataset

    ds = make_dataset(tmp_path / "DATASET")
    over = {"ngf": 4, "ndf": 4, "n_downs": 4, "slice_size": [16, 16], "d_layers": 2,
            "progress": False, "val_every": 0, "val_slices": 2, "batch_size": 4,
            "context": 1}
    result = train("pix2pix", ds, tmp_path / "run", config="demo", overrides=over, steps=3,
                   device="cpu", seed=0)
    assert len(result.losses) == 3
    assert all(math.isfinite(v) for row in result.losses for v in row.values())
    assert {k.split(".")[0] for k in load_file(result.model_path)} == {"G"}
    model = load_model("pix2pix", result.model_path)
    assert model.meta.data["spacing_mm"] == [1.0, 1.0, 1.0] and model.config["context"] == 1
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    out = FAMILY.translate(model.nets, x, config=model.config, sampler="one-shot", steps=None,
                           eta=0.0, generator=None)
    assert out.shape == (2, 1, 16, 16)
