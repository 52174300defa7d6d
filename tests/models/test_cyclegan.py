"""CycleGAN: ResNet generator and PatchGAN sizes, LSGAN/cycle/identity losses, steps, pool."""

from __future__ import annotations

import math

import pytest
import torch

from medxlate.models.cyclegan.family import FAMILY
from medxlate.models.cyclegan.pool import ImagePool
from medxlate.models.nets.patchgan import PatchGAN
from medxlate.models.nets.resnet_generator import ResnetGenerator
from medxlate.models.registry import get_spec
from tests.models.gan_helpers import RecordingContext

TINY = {**get_spec("cyclegan").config("demo"), "ngf": 4, "ndf": 4, "n_blocks": 1,
        "slice_size": [16, 16], "d_layers": 2, "pool_size": 4}


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_paper_sizes_match_the_reference_networks():
    # The CycleGAN reference prints 11.378 M for resnet_9blocks and 2.765 M for its 70x70
    # PatchGAN (instance norm), both on 3-channel images.
    assert n_params(ResnetGenerator(3, 3, n_blocks=9)) == 11_378_179
    assert round(n_params(PatchGAN(3)) / 1e6, 3) == 2.765
    assert n_params(ResnetGenerator(1, 1, n_blocks=6)) < n_params(ResnetGenerator(1, 1))


def test_resnet_generator_shapes_and_reflect_padding():
    g = ResnetGenerator(1, 1, ngf=4, n_blocks=6)
    assert sum(isinstance(m, torch.nn.ReflectionPad2d) for m in g.modules()) == 2 + 2 * 6
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) for m in g.modules()) == 2 + 2 + 2 * 6 + 1
    out = g(torch.randn(2, 1, 32, 24))
    assert out.shape == (2, 1, 32, 24) and out.abs().max() <= 1.0
    with pytest.raises(ValueError, match="multiple of 4"):
        g(torch.randn(1, 1, 30, 32))


def test_generator_objective_weights():
    torch.manual_seed(0)
    nets = FAMILY.build(TINY)
    mr, ct = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    loss, out = FAMILY.g_loss(nets, mr, ct, TINY)
    g, f = nets["G_mr2ct"], nets["G_ct2mr"]
    with torch.no_grad():
        adv = ((nets["D_ct"](g(mr)) - 1) ** 2).mean() + ((nets["D_mr"](f(ct)) - 1) ** 2).mean()
        cyc = (f(g(mr)) - mr).abs().mean() + (g(f(ct)) - ct).abs().mean()
        idt = (g(ct) - ct).abs().mean() + (f(mr) - mr).abs().mean()
    want = adv + 10 * cyc + 0.5 * 10 * idt
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    assert out["cycle"] == pytest.approx(cyc.item(), rel=1e-5)
    no_id, _ = FAMILY.g_loss(nets, mr, ct, {**TINY, "lambda_identity": 0.0})
    assert no_id.item() == pytest.approx((adv + 10 * cyc).item(), rel=1e-5)


def test_training_step_order_and_gradients():
    torch.manual_seed(0)
    nets = FAMILY.build(TINY)
    ctx = RecordingContext(FAMILY.optimizers(nets, TINY), nets)
    batch = {"mr": torch.rand(3, 1, 16, 16) * 2 - 1, "ct": torch.rand(3, 1, 16, 16) * 2 - 1}
    logs = FAMILY.training_step(nets, batch, ctx, TINY)
    assert {"g_gan", "cycle", "identity", "g", "d_ct", "d_mr"} == set(logs)
    assert all(math.isfinite(v) for v in logs.values())
    assert [c[0] for c in ctx.calls] == ["G", "D"]
    assert ctx.calls[0][1] == {"G_mr2ct": True, "G_ct2mr": True, "D_ct": False, "D_mr": False}
    assert ctx.calls[1][1] == {"G_mr2ct": False, "G_ct2mr": False, "D_ct": True, "D_mr": True}
    with pytest.raises(ValueError, match="context"):
        FAMILY.build({**TINY, "context": 1})


def test_a_few_steps_reduce_the_cycle_loss():
    torch.manual_seed(0)
    cfg = {**TINY, "lr": 2e-3}
    nets = FAMILY.build(cfg)
    ctx = RecordingContext(FAMILY.optimizers(nets, cfg), nets)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    mr = 0.8 * torch.stack([torch.sin(3 * xx * (i + 1) / 4 + yy) for i in range(4)])[:, None]
    batch = {"mr": mr, "ct": -mr.flip(0)}
    cycle = [FAMILY.training_step(nets, batch, ctx, cfg)["cycle"] for _ in range(15)]
    assert cycle[-1] < 0.7 * cycle[0]


def test_image_pool_returns_history_half_of_the_time():
    pool = ImagePool(2)
    gen = torch.Generator().manual_seed(0)
    first = pool.query(torch.tensor([[[[1.0]]], [[[2.0]]]]), gen)
    assert first.flatten().tolist() == [1.0, 2.0]  # filling: passes through
    seen = []
    for i in range(200):
        seen.append(pool.query(torch.full((1, 1, 1, 1), 10.0 + i), gen).item())
    old = sum(v != 10.0 + i for i, v in enumerate(seen))
    assert 70 < old < 130  # about half come from the history
    assert torch.equal(ImagePool(0).query(torch.ones(2, 1, 2, 2)), torch.ones(2, 1, 2, 2))


def test_translate_picks_the_generator_of_the_direction():
    torch.manual_seed(0)
    nets = {k: v.eval() for k, v in FAMILY.build(TINY).items()}
    x = torch.randn(1, 1, 16, 16)
    kw = {"sampler": "one-shot", "steps": None, "eta": 0.0, "generator": None}
    a = FAMILY.translate(nets, x, config={**TINY, "direction": "mri2ct"}, **kw)
    b = FAMILY.translate(nets, x, config={**TINY, "direction": "ct2mri"}, **kw)
    with torch.no_grad():
        assert torch.equal(a, nets["G_mr2ct"](x)) and torch.equal(b, nets["G_ct2mr"](x))
    assert FAMILY.directions(TINY) == ("mri2ct", "ct2mri") and not FAMILY.stochastic(TINY)


def test_engine_trains_unpaired_cyclegan_with_both_generators(tmp_path):
    from safetensors.torch import load_file

    from medxlate.synth.model import load_model
    from medxlate.train import train
    from tests.train.conftest import make_dataset

    ds = make_dataset(tmp_path / "DATASET")
    over = {"ngf": 4, "ndf": 4, "n_blocks": 1, "slice_size": [16, 16], "d_layers": 2,
            "progress": False, "val_every": 0, "val_slices": 2, "batch_size": 4}
    result = train("cyclegan", ds, tmp_path / "run", config="demo", overrides=over, steps=3,
                   device="cpu", seed=0)
    assert len(result.losses) == 3 and all(math.isfinite(r["cycle"]) for r in result.losses)
    assert {k.split(".")[0] for k in load_file(result.model_path)} == {"G_mr2ct", "G_ct2mr"}
    model = load_model("cyclegan", result.model_path)
    assert model.config["pairing"] == "unpaired"
    assert model.directions() == ("mri2ct", "ct2mri")
