"""SynDiff family: registry entry, losses, training steps (directly and through the engine),
and the 4-step adversarial translation."""

import json
import math

import pytest
import torch

from medxlate.diffusion.schedules import syndiff_vp
from medxlate.errors import UsageError
from medxlate.models.registry import get_spec
from medxlate.models.syndiff.losses import posterior_sample, r1_penalty
from medxlate.train.config import resolve_config
from medxlate.train.context import StepContext
from tests.train.conftest import make_dataset

TINY = {"slice_size": [16, 16], "nf": 8, "ch_mult": [1, 2], "attn_resolutions": [8],
        "z_emb_dim": 16, "nz": 8, "n_mlp": 1, "ngf_d": 4, "t_emb_dim": 16, "ngf_f": 4,
        "ndf_c": 4, "resnet_blocks": 1, "patch_layers": 1, "batch_size": 2}


def test_registry_entry():
    spec = get_spec("syndiff")
    assert spec.directions == ("mri2ct", "ct2mri") and spec.spatial_dims == "2d"
    assert spec.samplers == ("adversarial",) and spec.default_sampler == "adversarial"
    assert set(spec.configs) == {"paper", "demo"} and spec.weights == "syndiff-demo.safetensors"
    paper = spec.config("paper")
    assert (paper["nf"], paper["ch_mult"], paper["lambda_l1"], paper["lr_g"], paper["lr_d"],
            paper["betas"], paper["ema"]) == (64, [1, 1, 2, 2, 4, 4], 0.5, 1.6e-4, 1e-4,
                                              [0.5, 0.9], 0.999)
    # Cosine decay of lr_g to 1e-5 (the engine's floor is relative to the base LR).
    assert paper["lr_g"] * paper["lr_floor"] == pytest.approx(1e-5)


def test_r1_penalty_on_a_linear_discriminator():
    # D(x) = sum(w * x): grad = w for every sample, ||w||^2 = 1 + 4 + 9 = 14.
    w = torch.tensor([1.0, 2.0, 3.0])
    x = torch.randn(4, 3, requires_grad=True)
    assert float(r1_penalty((x * w).sum(1), x, r1_gamma=0.5)) == pytest.approx(0.25 * 14)


def test_posterior_sample_is_the_mean_at_t0_and_noisy_otherwise():
    post = syndiff_vp().posterior()
    x0, x1 = torch.full((2, 1, 4, 4), 0.5), torch.zeros(2, 1, 4, 4)
    t = torch.tensor([0, 2])
    s = posterior_sample(post, x0, x1, t, torch.Generator().manual_seed(0))
    mean, _, _ = post.q_posterior_mean_variance(x0, x1, t)
    assert torch.equal(s[0], mean[0])
    assert float((s[1] - mean[1]).std()) > 0.1


def _ctx(family, nets, cfg):
    return StepContext(family.optimizers(nets, cfg), torch.device("cpu"),
                       torch.Generator().manual_seed(0))


@pytest.mark.parametrize("pairing", ["paired", "unpaired"])
def test_training_steps_update_every_network(pairing):
    spec = get_spec("syndiff")
    family = spec.load_entry()
    cfg = resolve_config(spec, "demo", {**TINY, "pairing": pairing})
    torch.manual_seed(0)
    nets = family.build(cfg)
    expected = {"paired": {"G_mr2ct", "D_ct"},
                "unpaired": {"G_mr2ct", "G_ct2mr", "D_ct", "D_mr", "F_mr2ct", "F_ct2mr",
                             "DC_ct", "DC_mr"}}[pairing]
    assert set(nets) == expected
    before = {k: [p.detach().clone() for p in v.parameters()] for k, v in nets.items()}
    ctx = _ctx(family, nets, cfg)
    gen = torch.Generator().manual_seed(1)
    batch = {"mr": torch.rand(2, 1, 16, 16, generator=gen) * 2 - 1,
             "ct": torch.rand(2, 1, 16, 16, generator=gen) * 2 - 1}
    for step in range(2):
        ctx.step_index = step
        logs = family.training_step(nets, batch, ctx, cfg)
    assert all(math.isfinite(v) and abs(v) < 1e3 for v in logs.values())
    assert logs["g_l1"] > 0 and logs["g_adv"] > 0
    r1_key = "r1" if pairing == "paired" else "r1_ct"
    assert logs[r1_key] == 0.0                     # lazy: R1 only every lazy_reg=10 steps
    for name, net in nets.items():
        changed = any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters()))
        assert changed, name
    assert sorted(ctx.stepped) == (["D", "DC", "G"] if pairing == "unpaired" else ["D", "G"])
    assert family.inference_nets(cfg) == (["G_mr2ct"] if pairing == "paired"
                                          else ["G_mr2ct", "G_ct2mr"])


def test_translate_runs_four_adversarial_steps():
    spec = get_spec("syndiff")
    family = spec.load_entry()
    cfg = resolve_config(spec, "demo", {**TINY})
    nets = {k: v.eval() for k, v in family.build(cfg).items()}
    calls = []
    g = nets["G_mr2ct"]
    forward = g.forward

    def spy(x, t, z):
        calls.append(int(t[0]))
        return forward(x, t, z)

    g.forward = spy
    src = torch.zeros(3, 1, 16, 16)
    out = family.translate(nets, src, config=cfg, sampler="adversarial", steps=None, eta=0.0,
                           generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 1, 16, 16) and float(out.abs().max()) <= 1.0
    assert calls == [3, 2, 1, 0]
    again = family.translate(nets, src, config=cfg, sampler="adversarial", steps=None,
                             eta=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)                 # seeded: reproducible
    with pytest.raises(UsageError, match="adversarial"):
        family.translate(nets, src, config=cfg, sampler="ddim", steps=None, eta=0.0,
                         generator=None)
    with pytest.raises(UsageError, match="4 steps"):
        family.translate(nets, src, config=cfg, sampler="adversarial", steps=10, eta=0.0,
                         generator=None)
    with pytest.raises(UsageError, match="ct2mri"):
        family.translate(nets, src, config={**cfg, "direction": "ct2mri"},
                         sampler="adversarial", steps=None, eta=0.0, generator=None)


@pytest.mark.parametrize("pairing", ["paired", "unpaired"])
def test_engine_trains_syndiff(tmp_path, pairing):
    from medxlate.train import train
    from medxlate.weights import load_checkpoint

    data = make_dataset(tmp_path / "DATASET")
    over = {**TINY, "pairing": pairing, "steps": 2, "checkpoint_every": 2, "val_every": 0,
            "val_slices": 2, "log_every": 1, "progress": False}
    result = train("syndiff", data, tmp_path / "run", config="demo", overrides=over,
                   device="cpu")
    assert result.steps == 2
    tensors, meta = load_checkpoint(result.model_path)
    nets = {k.split(".", 1)[0] for k in tensors}
    assert nets == ({"G_mr2ct"} if pairing == "paired" else {"G_mr2ct", "G_ct2mr"})
    assert meta.model == "syndiff" and meta.config["pairing"] == pairing
    assert json.loads(json.dumps(meta.normalisation))["ct"]["kind"] == "window"
    assert "val_mae_hu" in result.val
