"""The KL autoencoder: grey <-> 3 channels, float32 under autocast, scaling factor, loading a
diffusers folder, and the encode/decode round trip of a VAE trained here."""

from __future__ import annotations

import json

import pytest
import torch

from medxlate.errors import UsageError, WeightsError
from medxlate.models.registry import get_spec
from medxlate.models.vae.autoencoder import LatentVAE, downsampling
from medxlate.models.vae.family import FAMILY, kl_per_pixel
from medxlate.models.vae.libs import autoencoder_kl
from medxlate.models.vae.load import load_vae
from medxlate.train.context import StepContext

TINY = {"in_channels": 3, "out_channels": 3, "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4, "block_out_channels": [8, 8, 16, 16],
        "layers_per_block": 1, "latent_channels": 4, "norm_num_groups": 4,
        "scaling_factor": 0.5}


def test_registry_entry():
    spec = get_spec("vae")
    assert spec.extra == {"autoencoder": True}
    assert {"paper", "demo"} == set(spec.configs)
    assert spec.config("paper")["block_out_channels"] == [128, 256, 512, 512]


def test_sd_layout_shapes_and_size():
    from medxlate.models.vae import SD_LAYOUT
    from medxlate.models.vae.autoencoder import arch_from_config

    arch = arch_from_config(SD_LAYOUT, 0.18215)
    assert downsampling(arch) == 8
    with torch.device("meta"):
        vae = LatentVAE(arch)
    # The SD VAE (sd-vae-ft-ema) has 83.65 M parameters.
    assert abs(sum(p.numel() for p in vae.parameters()) / 1e6 - 83.65) < 0.01


def test_kl_closed_form():
    mean = torch.tensor([[[[1.0, 0.0]]]])
    logvar = torch.tensor([[[[0.0, math_log2()]]]])
    # KL = 0.5 * (mu^2 + s^2 - 1 - log s^2): 0.5 for (1, 1), 0.5 * (2 - 1 - ln 2) for (0, 2)
    expected = (0.5 + 0.5 * (1 - math_log2())) / 4
    assert kl_per_pixel(mean, logvar, 4).item() == pytest.approx(expected, rel=1e-6)


def math_log2() -> float:
    import math

    return math.log(2.0)


def test_diffusers_folder_loads_and_matches_diffusers(tmp_path):
    torch.manual_seed(0)
    ae = autoencoder_kl()(**{k: tuple(v) if isinstance(v, list) else v
                             for k, v in TINY.items()})
    ae.save_pretrained(tmp_path / "vae")
    arch, state = load_vae(tmp_path / "vae")
    assert arch["scaling_factor"] == 0.5 and arch["latent_channels"] == 4
    vae = LatentVAE(arch)
    vae.load_state_dict(state)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = ae.encode(x.repeat(1, 3, 1, 1)).latent_dist.mean * 0.5
        z = vae.encode(x)
        # bf16 autocast around it changes nothing: the VAE runs in float32
        with torch.autocast("cpu", dtype=torch.bfloat16):
            z_amp = vae.encode(x)
            decoded = vae.decode(z_amp)
        ref_dec = ae.decode(expected / 0.5).sample.mean(1, keepdim=True)
    assert z.shape == (2, 4, 4, 4) and z_amp.dtype == torch.float32
    assert torch.allclose(z, expected, atol=1e-6) and torch.equal(z, z_amp)
    assert decoded.dtype == torch.float32 and torch.allclose(decoded, ref_dec, atol=1e-5)


def test_malformed_or_absent_vae_is_a_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_vae(tmp_path / "nothing")
    folder = tmp_path / "bad"
    folder.mkdir()
    with pytest.raises(WeightsError, match="no config.json"):
        load_vae(folder)
    (folder / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL",
                                                    "block_out_channels": [8, 8],
                                                    "latent_channels": 4}))
    with pytest.raises(WeightsError, match="no diffusion_pytorch_model"):
        load_vae(folder)
    torch.save({"encoder.conv_in.weight": torch.zeros(1)},
               folder / "diffusion_pytorch_model.bin")
    with pytest.raises(WeightsError, match="not a usable AutoencoderKL"):
        load_vae(folder)


def test_vae_does_not_translate():
    with pytest.raises(UsageError, match="does not translate"):
        FAMILY.translate({}, torch.zeros(1, 1, 8, 8), config={}, sampler="one-shot",
                         steps=None, eta=0.0, generator=None)


def _blobs(n: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size),
                            indexing="ij")
    out = []
    for _ in range(n):
        cx, cy, r = (torch.rand(3, generator=g) * torch.tensor([0.8, 0.8, 0.3])
                     + torch.tensor([-0.4, -0.4, 0.3]))
        out.append(torch.where((xx - cx) ** 2 + (yy - cy) ** 2 < r ** 2, 0.6, -0.8))
    return torch.stack(out)[:, None]


def test_trained_tiny_vae_round_trip():
    """Train the family's training step on disc images; the round trip must beat the best
    constant image by a wide margin, and latents stay unclipped with the running scale."""
    torch.manual_seed(0)
    cfg = {**get_spec("vae").config("demo"), "block_out_channels": [8, 8, 16, 16],
           "norm_num_groups": 4, "layers_per_block": 1, "lr": 3e-3, "context": 0}
    nets = FAMILY.build(cfg)
    opts = FAMILY.optimizers(nets, cfg)
    ctx = StepContext(opts, torch.device("cpu"), torch.Generator().manual_seed(0))
    data = _blobs(64, 32, 0)
    for step in range(80):
        idx = torch.randint(0, 64, (8,))
        ctx.step_index = step
        logs = FAMILY.training_step(nets, {"mr": data[idx], "ct": data[idx]}, ctx, cfg)
    vae = nets["vae"].eval()
    test = _blobs(16, 32, 1)
    with torch.no_grad():
        z = vae.encode(test)
        rec = vae.decode(z)
    baseline = (test - test.mean()).abs().mean().item()
    mae = (rec - test).abs().mean().item()
    assert mae < 0.45 * baseline, (mae, baseline)   # 0.28 measured
    assert z.shape == (16, 4, 4, 4)
    assert logs["scaling_factor"] == pytest.approx(float(vae.scaling_factor))
    assert float(vae.scaling_factor) != 1.0
