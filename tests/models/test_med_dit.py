"""Med-DiT: vision embedder, InfoNCE, Eq. 6 conditioning, the local CLIP loader."""

from __future__ import annotations

import json
import math
import pickle

import pytest
import torch
import torch.nn.functional as F

from medxlate.errors import UsageError, WeightsError
from medxlate.models.med_dit.clip import CLIPVision, load_clip
from medxlate.models.med_dit.embedder import VisionEmbedder, info_nce
from medxlate.models.med_dit.family import FAMILY, MedDiTNet, eq6_condition
from medxlate.models.registry import get_spec
from medxlate.models.vae.autoencoder import demo_arch

SPEC = get_spec("med-dit")


def test_registry_entry():
    assert SPEC.default_sampler == "respaced"
    assert {"paper", "ablation", "dit-s2", "dit-b2", "demo"} == set(SPEC.configs)
    paper = SPEC.config("paper")
    assert (paper["depth"], paper["hidden"], paper["slice_size"]) == (16, 512, [224, 224])
    assert paper["clip"] is None and paper["tau"] == 0.07


def test_info_nce_hand_computed_3x3():
    # Rows (after L2 normalisation): (1, 0), (0, 1), (1, 1)/sqrt(2); tau = 0.5.
    # sim = [[2, 0, s], [0, 2, s], [s, s, 2]] with s = sqrt(2) (= cos 45 deg / 0.5).
    e_ve = torch.tensor([[[3.0], [0.0]], [[0.0], [5.0]], [[7.0], [7.0]]])   # (B=3, L=2, D=1)
    s = math.sqrt(2.0)
    row1 = -math.log(math.exp(2) / (math.exp(2) + math.exp(0) + math.exp(s)))
    row3 = -math.log(math.exp(2) / (math.exp(2) + 2 * math.exp(s)))
    expected = (2 * row1 + row3) / 3            # = 0.6000 (0.52588 * 2 + 0.74829) / 3
    assert info_nce(e_ve, 0.5).item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.60002, abs=1e-4)


@pytest.mark.parametrize("n,tokens", [(2, 196), (4, 49), (7, 16), (14, 4)])
def test_vision_embedder_shapes_for_every_patch(n, tokens):
    f_ve = VisionEmbedder(4, 28, n, 32)
    e = f_ve(torch.randn(2, 4, 28, 28))
    assert e.shape == (2, tokens, 32)
    # LayerNorm output: zero mean, unit variance per token (affine starts at identity)
    assert torch.allclose(e.mean(-1), torch.zeros(2, tokens), atol=1e-5)


@pytest.mark.parametrize("n", [1, 3, 5, 28, 56])
def test_vision_embedder_refuses_other_patches(n):
    with pytest.raises(UsageError, match="choose a divisor of 28: 2, 4, 7, 14"):
        VisionEmbedder(4, 28, n, 32)


def test_channel_attention_against_formula():
    torch.manual_seed(0)
    f_ve = VisionEmbedder(4, 8, 2, 8, reduction=2)
    z = torch.randn(1, 4, 8, 8)
    f = f_ve.local(f_ve.patchify(z))
    fc1, fc2 = f_ve.mlp[0], f_ve.mlp[2]

    def mlp(v):
        return fc2(torch.relu(fc1(v)))

    w = torch.sigmoid(mlp(f.mean((2, 3))) + mlp(f.amax((2, 3))))
    tokens = (f * w[:, :, None, None]).flatten(2).transpose(1, 2)
    expected = F.layer_norm(tokens, (8,), f_ve.norm.weight, f_ve.norm.bias)
    assert torch.allclose(f_ve(z), expected, atol=1e-6)


def test_eq6_condition_concatenation():
    e_ve_mean, t_emb, e_clip = torch.randn(3, 16), torch.randn(3, 16), torch.randn(3, 16)
    c = eq6_condition(e_ve_mean, t_emb, e_clip)
    assert c.shape == (3, 32)
    assert torch.equal(c[:, :16], e_ve_mean + t_emb) and torch.equal(c[:, 16:], e_clip + t_emb)
    assert eq6_condition(e_ve_mean, t_emb, None).shape == (3, 16)
    with_clip = MedDiTNet(4, 8, 2, 16, 1, 2, clip_dim=24)
    assert with_clip.dit.blocks[0].adaLN_modulation[1].in_features == 32
    assert with_clip.clip_proj.in_features == 24 and with_clip.clip_proj.out_features == 16
    assert MedDiTNet(4, 8, 2, 16, 1, 2, None).dit.blocks[0].adaLN_modulation[1].in_features == 16


def _clip_folder(root, image_size=32):
    """A tiny open_clip folder: timm vit_tiny_patch16 tower at 32 px, random weights."""
    cfg = {"model_cfg": {"embed_dim": 24, "vision_cfg": {
        "timm_model_name": "vit_tiny_patch16_224", "timm_model_pretrained": False,
        "timm_pool": "", "timm_proj": "linear", "image_size": image_size},
        "text_cfg": {"hf_model_name": "unused", "context_length": 8}},
        "preprocess_cfg": {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}}
    root.mkdir()
    (root / "open_clip_config.json").write_text(json.dumps(cfg))
    g = torch.Generator().manual_seed(0)
    shapes = {"trunk.cls_token": (1, 1, 192), "trunk.pos_embed": (1, 5, 192),
              "trunk.patch_embed.proj.weight": (192, 3, 16, 16),
              "trunk.patch_embed.proj.bias": (192,), "trunk.norm.weight": (192,),
              "trunk.norm.bias": (192,), "head.proj.weight": (24, 192)}
    for i in range(12):
        p = f"trunk.blocks.{i}."
        shapes.update({p + "norm1.weight": (192,), p + "norm1.bias": (192,),
                       p + "attn.qkv.weight": (576, 192), p + "attn.qkv.bias": (576,),
                       p + "attn.proj.weight": (192, 192), p + "attn.proj.bias": (192,),
                       p + "norm2.weight": (192,), p + "norm2.bias": (192,),
                       p + "mlp.fc1.weight": (768, 192), p + "mlp.fc1.bias": (768,),
                       p + "mlp.fc2.weight": (192, 768), p + "mlp.fc2.bias": (192,)})
    state = {f"visual.{k}": torch.randn(s, generator=g) * 0.05 for k, s in shapes.items()}
    state["text.transformer.embeddings.weight"] = torch.zeros(4, 4)
    torch.save(state, root / "open_clip_pytorch_model.bin")
    return root, state


def _reference_vit(state, img):
    """timm ViT + open_clip linear head written out (tokens, cls, pre-norm blocks)."""
    def ln(v, w, b):
        return F.layer_norm(v, (v.shape[-1],), w, b, eps=1e-6)

    s = {k[len("visual."):]: v for k, v in state.items() if k.startswith("visual.")}
    x = F.conv2d(img, s["trunk.patch_embed.proj.weight"], s["trunk.patch_embed.proj.bias"],
                 stride=16).flatten(2).transpose(1, 2)
    x = torch.cat([s["trunk.cls_token"].expand(len(x), -1, -1), x], 1) + s["trunk.pos_embed"]
    for i in range(12):
        p = f"trunk.blocks.{i}."
        h = ln(x, s[p + "norm1.weight"], s[p + "norm1.bias"])
        q, k, v = (h @ s[p + "attn.qkv.weight"].t() + s[p + "attn.qkv.bias"]).split(192, -1)
        heads = []
        for j in range(3):
            sl = slice(64 * j, 64 * j + 64)
            a = torch.softmax(q[..., sl] @ k[..., sl].transpose(1, 2) / 8.0, -1)
            heads.append(a @ v[..., sl])
        x = x + torch.cat(heads, -1) @ s[p + "attn.proj.weight"].t() + s[p + "attn.proj.bias"]
        h = ln(x, s[p + "norm2.weight"], s[p + "norm2.bias"])
        h = F.gelu(h @ s[p + "mlp.fc1.weight"].t() + s[p + "mlp.fc1.bias"])
        x = x + h @ s[p + "mlp.fc2.weight"].t() + s[p + "mlp.fc2.bias"]
    x = ln(x, s["trunk.norm.weight"], s["trunk.norm.bias"])
    return x[:, 0] @ s["head.proj.weight"].t()


def test_local_clip_folder_loads_and_matches_reference(tmp_path):
    folder, state = _clip_folder(tmp_path / "clip")
    arch, clip_state = load_clip(folder)
    assert (arch["width"], arch["depth"], arch["patch"], arch["embed_dim"]) == (192, 12, 16, 24)
    enc = CLIPVision(arch)
    enc.load_state_dict(clip_state)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    img = ((x + 1) / 2).repeat(1, 3, 1, 1)
    img = (img - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / \
        torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(enc(x), _reference_vit(state, img), atol=1e-4)


class _Exploit:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_pickle_that_would_execute_code_is_refused(tmp_path):
    folder, _ = _clip_folder(tmp_path / "clip")
    marker = tmp_path / "marker"
    with open(folder / "open_clip_pytorch_model.bin", "wb") as fh:
        pickle.dump({"visual.trunk.cls_token": _Exploit(marker)}, fh, protocol=2)
    with pytest.raises(WeightsError, match="cannot load weights safely"):
        load_clip(folder)
    assert not marker.exists()


def test_clip_folder_errors(tmp_path):
    with pytest.raises(WeightsError, match="not an open_clip folder"):
        load_clip(tmp_path / "absent")
    folder, _ = _clip_folder(tmp_path / "clip")
    cfg = json.loads((folder / "open_clip_config.json").read_text())
    cfg["model_cfg"]["vision_cfg"]["timm_model_name"] = "resnet50"
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="not a timm ViT"):
        load_clip(folder)


def test_med_dit_with_clip_builds_and_translates(tmp_path):
    folder, _ = _clip_folder(tmp_path / "clip")
    arch, clip_state = load_clip(folder)
    cfg = {**SPEC.config("demo"), "vae_arch": demo_arch(), "clip_arch": arch,
           "slice_size": [32, 32], "depth": 1, "hidden": 16, "heads": 2, "embedder_patch": 2,
           "diffusion_steps": 100}
    nets = FAMILY.build(cfg)
    nets["clip"].load_state_dict(clip_state)
    assert FAMILY.inference_nets(cfg) == ["embedder", "dit", "vae", "clip"]
    assert not any(p.requires_grad for p in nets["clip"].parameters())
    out = FAMILY.translate(nets, torch.rand(2, 1, 32, 32) * 2 - 1, config=cfg,
                           sampler="ddim", steps=2, eta=0.0,
                           generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 1, 32, 32)
