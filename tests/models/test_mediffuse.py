"""Mediffuse (InstructPix2Pix and ControlNet on SD parts): tiny random models, offline.

Oracles: hand-computed values of the guidance formulas (Brooks et al. 2023 Eq. 3; Ho &
Salimans 2022), CLIP's documented vocabulary layout for the character-level tokenizer, the
weights written by diffusers' own ``save_pretrained`` for the local-folder loaders, and the
input volume's own grid for synthesis.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.errors import UsageError, WeightsError
from medxlate.io.volume import Volume
from medxlate.models.mediffuse.guidance import cfg_guidance, ip2p_dropout_masks, ip2p_guidance
from medxlate.models.registry import get_spec
from tests.train.conftest import make_dataset

UNET = {"sample_size": 8, "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
        "block_out_channels": [8, 16], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "cross_attention_dim": 32,
        "attention_head_dim": 4, "norm_num_groups": 4}
VAE = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1,
       "block_out_channels": [8, 16], "down_block_types": ["DownEncoderBlock2D"] * 2,
       "up_block_types": ["UpDecoderBlock2D"] * 2, "norm_num_groups": 4, "sample_size": 16,
       "scaling_factor": 1.0}
TRAIN = {"slice_size": [16, 16], "batch_size": 2, "steps": 2, "val_every": 0, "val_slices": 2,
         "val_steps": 2, "checkpoint_every": 2, "log_every": 1, "progress": False,
         "warmup_steps": 0, "inference_steps": 3, "augment": {"flip_lr": 0.0}}


def tiny(name: str) -> dict:
    cfg = {**get_spec(name).config("demo"), **TRAIN, "vae": VAE}
    if name == "mediffuse-ip2p":
        cfg["unet"] = {**UNET, "in_channels": 8}
    else:
        cfg["unet"] = UNET
        cfg["control"] = {"conditioning_embedding_out_channels": [8, 16],
                          "conditioning_channels": 3}
    return cfg


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("mediffuse") / "DATASET")


@pytest.fixture(scope="module")
def ip2p_run(dataset, tmp_path_factory):
    from medxlate.train import train

    out = tmp_path_factory.mktemp("ip2p") / "run"
    return train("mediffuse-ip2p", dataset, out, config={"base": "demo", **tiny("mediffuse-ip2p")},
                 device="cpu", seed=0)


def test_ip2p_dual_guidance_matches_eq3_by_hand():
    e_u, e_i, e_f = torch.tensor([1.0]), torch.tensor([3.0]), torch.tensor([4.0])
    # 1 + 1.5 * (3 - 1) + 7.5 * (4 - 3) = 11.5
    assert ip2p_guidance(e_u, e_i, e_f, 1.5, 7.5).item() == pytest.approx(11.5)
    assert ip2p_guidance(e_u, e_i, e_f, 1.0, 1.0).item() == pytest.approx(4.0)
    assert ip2p_guidance(e_u, e_i, e_f, 0.0, 0.0).item() == pytest.approx(1.0)
    # w = 9: 2 + 9 * (5 - 2) = 29; w = 1 is the conditional prediction
    assert cfg_guidance(torch.tensor(2.0), torch.tensor(5.0), 9.0).item() == pytest.approx(29)
    assert cfg_guidance(torch.tensor(2.0), torch.tensor(5.0), 1.0).item() == pytest.approx(5)


def test_conditioning_dropout_is_5_percent_each_way():
    u = torch.arange(10000) / 10000.0
    text, image = ip2p_dropout_masks(u, 0.05)
    assert int((text & ~image).sum()) == 500           # text only
    assert int((text & image).sum()) == 500            # both
    assert int((image & ~text).sum()) == 500           # image only


def test_character_tokenizer_follows_clip_vocabulary_layout():
    from medxlate.models.mediffuse.text import TokenizerFiles, token_ids

    files = TokenizerFiles()
    ids = token_ids(files, ["Ab c"], max_length=8)[0].tolist()
    # CLIP layout: ids 0-255 byte symbols ('a' = byte 97), 256-511 word-final, 512 start,
    # 513 end (also the padding); lower-cased, words split on spaces.
    assert ids == [512, 97, 256 + 98, 256 + 99, 513, 513, 513, 513]
    # The files travel as buffers of any length through a state dict.
    other = TokenizerFiles({"x": 0}, [])
    other.load_state_dict(files.state_dict())
    assert other.files() == files.files()


def test_ip2p_trains_saves_and_rebuilds_from_metadata_alone(ip2p_run):
    from medxlate.synth.model import load_model
    from medxlate.weights import read_meta

    meta = read_meta(ip2p_run.model_path)
    assert meta.config["unet"]["in_channels"] == 8 and meta.config["lr"] == 5e-4
    assert all(np.isfinite(r["loss"]) for r in ip2p_run.losses)
    model = load_model("mediffuse-ip2p", ip2p_run.model_path)
    assert set(model.nets) == {"unet", "vae", "text_encoder", "tokenizer"}
    assert model.nets["tokenizer"].files()[0]["<|endoftext|>"] == 513


def _translate(model, src, seed=0, **over):
    cfg = {**model.config, **over}
    return model.family.translate(model.nets, src, config=cfg, sampler="ddim", steps=3, eta=0.0,
                                  generator=torch.Generator().manual_seed(seed))


def test_guidance_scales_change_the_output_and_seeds_repeat(ip2p_run):
    from medxlate.synth.model import load_model

    model = load_model("mediffuse-ip2p", ip2p_run.model_path)
    src = torch.rand(2, 1, 16, 16) * 2 - 1
    a = _translate(model, src)
    assert torch.equal(a, _translate(model, src))              # --seed: bit-identical
    assert a.shape == (2, 1, 16, 16) and a.abs().max() <= 1
    assert not torch.allclose(a, _translate(model, src, image_guidance=1.0))
    assert not torch.allclose(a, _translate(model, src, text_guidance=1.0))
    assert not torch.allclose(a, _translate(model, src, seed=1))


def test_synthesize_keeps_the_input_grid_and_takes_guidance_options(ip2p_run, tmp_path):
    from medxlate.io.readers import read_volume, write_volume
    from medxlate.synth.model import load_model
    from medxlate.synth.run import apply_inference_options

    rng = np.random.default_rng(0)
    arr = np.zeros((20, 18, 3), np.float32)
    arr[3:17, 3:15] = 400 + rng.normal(0, 20, (14, 12, 3))
    affine = np.array([[0.9, 0, 0, -10.0], [0, 1.1, 0, 5.0], [0, 0, 2.5, 30.0], [0, 0, 0, 1]])
    write_volume(Volume(arr, affine, modality="MR"), tmp_path / "mr.nii.gz")
    r = CliRunner().invoke(app, ["synthesize", "--model", "mediffuse-ip2p", "--weights",
                                 str(ip2p_run.model_path), "--in", str(tmp_path / "mr.nii.gz"),
                                 "--out", str(tmp_path / "sct.nii.gz"), "--steps", "2",
                                 "--set", "image_guidance=1.2", "--seed", "3", "-q"])
    assert r.exit_code == 0, r.output
    out = read_volume(tmp_path / "sct.nii.gz")
    assert out.shape == (20, 18, 3)
    np.testing.assert_allclose(out.affine, affine, atol=1e-5)
    assert out.array[0, 0, 0] == -1024.0                       # outside the body
    model = load_model("mediffuse-ip2p", ip2p_run.model_path)
    with pytest.raises(UsageError, match="not an inference option"):
        apply_inference_options(model, {"lr": 1.0})
    with pytest.raises(UsageError, match="image_guidance"):
        apply_inference_options(model, {"image_guidance": "high"})


def test_controlnet_ct_to_mr_trains_and_reloads_bit_identically(dataset, tmp_path):
    from medxlate.synth.model import load_model
    from medxlate.train import train

    cfg = {**tiny("mediffuse-controlnet"), "gradient_checkpointing": True}  # as the paper config
    run = train("mediffuse-controlnet", dataset, tmp_path / "run",
                config={"base": "demo", **cfg}, device="cpu", seed=0)
    model = load_model("mediffuse-controlnet", run.model_path)
    assert model.config["direction"] == "ct2mri"
    assert set(model.nets) == {"unet", "vae", "text_encoder", "tokenizer", "controlnet"}
    src = torch.full((1, 1, 16, 16), -1.0)
    src[:, :, 4:12, 4:12] = 0.3                                 # a square: Canny finds edges
    a = _translate(model, src)
    again = load_model("mediffuse-controlnet", run.model_path)
    assert torch.equal(a, _translate(again, src))
    assert not torch.allclose(a, _translate(model, src, guidance=1.0))
    assert not torch.allclose(a, _translate(model, src, negative_prompt="noise"))


def _write_sd_folder(root, vocab_size=600):
    from medxlate.models.mediffuse.libs import sd
    from medxlate.models.mediffuse.text import byte_vocab

    lib = sd()
    torch.manual_seed(1)
    unet = lib.UNet2DConditionModel(**UNET)
    unet.save_pretrained(root / "unet")
    lib.AutoencoderKL(**{**VAE, "scaling_factor": 0.5}).save_pretrained(root / "vae")
    text_cfg = {**get_spec("mediffuse-ip2p").config("demo")["text_encoder"],
                "vocab_size": vocab_size}
    lib.CLIPTextModel(lib.CLIPTextConfig(**text_cfg)).save_pretrained(root / "text_encoder")
    vocab, _ = byte_vocab()
    (root / "tokenizer").mkdir()
    (root / "tokenizer" / "vocab.json").write_text(json.dumps(vocab))
    (root / "tokenizer" / "merges.txt").write_text("#version: 0.2\n")
    (root / "model_index.json").write_text("{}")
    return unet


def test_local_sd_folder_loads_and_widens_conv_in_with_zeros(tmp_path):
    from medxlate.models.mediffuse.ip2p import FAMILY

    unet = _write_sd_folder(tmp_path / "sd")
    cfg = {**tiny("mediffuse-ip2p"), "pretrained": str(tmp_path / "sd")}
    updates, states = FAMILY.pretrained(cfg)
    assert updates["latent_scale"] == 0.5 and updates["unet"]["in_channels"] == 8
    assert updates["text_encoder"]["vocab_size"] == 600
    w = states["unet"]["conv_in.weight"]
    assert w.shape[1] == 8
    assert torch.equal(w[:, :4], unet.conv_in.weight.detach())
    assert torch.count_nonzero(w[:, 4:]) == 0                  # Brooks et al. Sec. 3.2.1
    nets = FAMILY.build({**cfg, **updates})
    for name, state in states.items():
        nets[name].load_state_dict(state, strict=True)


def test_controlnet_folder_import_and_sd_copy(tmp_path):
    from medxlate.models.mediffuse.controlnet import FAMILY
    from medxlate.models.mediffuse.libs import sd

    unet = _write_sd_folder(tmp_path / "sd")
    cfg = {**tiny("mediffuse-controlnet"), "pretrained": str(tmp_path / "sd")}
    _, states = FAMILY.pretrained(cfg)
    # Zhang et al.: the ControlNet starts as a copy of the SD U-Net's encoder.
    key = "down_blocks.0.resnets.0.conv1.weight"
    assert torch.equal(states["controlnet"][key], unet.state_dict()[key])
    ctrl = sd().ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16))
    torch.nn.init.constant_(ctrl.controlnet_cond_embedding.conv_out.weight, 0.25)
    ctrl.save_pretrained(tmp_path / "cn")
    cfg["controlnet"] = str(tmp_path / "cn")
    updates, states = FAMILY.pretrained(cfg)
    assert updates["control"]["conditioning_embedding_out_channels"] == [8, 16]
    assert bool((states["controlnet"]["controlnet_cond_embedding.conv_out.weight"] == 0.25).all())


def test_missing_or_malformed_pretrained_folder_is_exit_5(dataset, tmp_path):
    (tmp_path / "empty").mkdir()
    for bad in (tmp_path / "absent", tmp_path / "empty"):
        cfg = tmp_path / "tiny.json"
        cfg.write_text(json.dumps({"base": "demo", **tiny("mediffuse-ip2p")}))
        r = CliRunner().invoke(app, ["train", "--model", "mediffuse-ip2p", "--data", str(dataset),
                                     "--out", str(tmp_path / "run"), "--config", str(cfg),
                                     "--set", f"pretrained={bad}", "--device", "cpu"])
        assert r.exit_code == 5, r.output
        line = r.output.strip().splitlines()[-1]
        assert line.startswith("medxlate: error:") and "diffusers-format" in line
    from medxlate.models.mediffuse.nets import pretrained_folder

    with pytest.raises(WeightsError, match="ControlNet folder"):
        pretrained_folder({"controlnet": str(tmp_path / "empty")}, "controlnet")


def test_weights_import_controlnet_makes_a_checkpoint_synthesize_can_use(tmp_path):
    from medxlate.models.mediffuse.libs import sd
    from medxlate.synth.model import load_model

    unet = _write_sd_folder(tmp_path / "sd")
    ctrl = sd().ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16))
    ctrl.save_pretrained(tmp_path / "cn")
    out = tmp_path / "imported.safetensors"
    base = ["weights", "import", str(tmp_path / "cn"), "--from", "controlnet", "--out", str(out),
            "--config", "demo"]
    r = CliRunner().invoke(app, base)
    assert r.exit_code == 2 and "--pretrained" in r.output and not out.exists()
    r = CliRunner().invoke(app, [*base, "--pretrained", str(tmp_path / "sd")])
    assert r.exit_code == 0, r.output
    model = load_model("mediffuse-controlnet", out)
    assert model.config["direction"] == "ct2mri" and model.config["latent_scale"] == 0.5
    key = "controlnet_cond_embedding.conv_in.weight"
    assert torch.equal(model.nets["controlnet"].state_dict()[key], ctrl.state_dict()[key])
    src = torch.full((1, 1, 16, 16), -1.0)
    src[:, :, 4:12, 4:12] = 0.3
    assert _translate(model, src).shape == (1, 1, 16, 16)


def test_canny_parameters_match_preprocess_and_demo_serves_both_directions(ip2p_run):
    from medxlate.preprocess.config import DEFAULTS
    from medxlate.synth.model import load_model

    contours = DEFAULTS["steps"]["contours"]
    canny = get_spec("mediffuse-controlnet").config("paper")["canny"]
    assert canny == {k: contours[k] for k in ("sigma", "low_threshold", "high_threshold")}
    model = load_model("mediffuse-ip2p", ip2p_run.model_path)
    assert model.translations() == (("mr", "ct"), ("ct", "mr"))
