"""The BiomedCLIP image encoder f_clip, read from a local open_clip folder, never pickled code.

BiomedCLIP (Zhang et al. 2023) is an open_clip model whose vision tower is timm's
``vit_base_patch16_224`` (class-token pooling) followed by a linear projection to 512.
This module rebuilds that tower with timm's parameter names (``visual.trunk.*``,
``visual.head.proj.weight``), so the folder's weights load directly without importing
open_clip or timm. The folder holds ``open_clip_config.json`` and
``open_clip_pytorch_model.bin`` (read with ``torch.load(weights_only=True)``: a pickle that
would run code is refused) or ``open_clip_model.safetensors``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medxlate.errors import WeightsError
from medxlate.models.vae.load import read_tensors

# timm ViT sizes: (width, depth, heads).
_VIT_SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12),
              "large": (1024, 24, 16)}
_VIT_NAME = re.compile(r"^vit_(tiny|small|base|large)_patch(\d+)_(\d+)$")
_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
# OpenAI CLIP's normalisation, open_clip's default when preprocess_cfg has none.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class Block(nn.Module):
    """timm's pre-norm ViT block (LayerNorm eps 1e-6, exact GELU)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim)
        self.attn.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, 4 * dim)
        self.mlp.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.attn.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads) \
            .permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        x = x + self.attn.proj(a)
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


class CLIPVision(nn.Module):
    """open_clip TimmModel(ViT, pool "", proj "linear"): image slices -> e_clip (B, E).

    Args:
        arch: {"width", "depth", "heads", "patch", "image_size", "embed_dim", "proj_bias",
            "mean", "std"} (see :func:`arch_from_open_clip`).
    """

    def __init__(self, arch: dict[str, Any]) -> None:
        super().__init__()
        w, p, size = int(arch["width"]), int(arch["patch"]), int(arch["image_size"])
        self.image_size, self.embed_dim = size, int(arch["embed_dim"])
        self.trunk = nn.Module()
        self.trunk.patch_embed = nn.Module()
        self.trunk.patch_embed.proj = nn.Conv2d(3, w, p, stride=p)
        self.trunk.cls_token = nn.Parameter(torch.zeros(1, 1, w))
        self.trunk.pos_embed = nn.Parameter(torch.zeros(1, 1 + (size // p) ** 2, w))
        self.trunk.blocks = nn.ModuleList(Block(w, int(arch["heads"]))
                                          for _ in range(int(arch["depth"])))
        self.trunk.norm = nn.LayerNorm(w, eps=1e-6)
        self.head = nn.Module()
        self.head.proj = nn.Linear(w, self.embed_dim, bias=bool(arch["proj_bias"]))
        self.register_buffer("mean", torch.tensor(arch["mean"]).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(arch["std"]).view(1, 3, 1, 1),
                             persistent=False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Grey slices in [-1, 1] (B, 1, H, W) -> normalised RGB at the encoder's size."""
        img = ((x.float() + 1) / 2).clamp(0, 1).expand(-1, 3, -1, -1)
        if img.shape[-2:] != (self.image_size, self.image_size):
            img = F.interpolate(img, size=(self.image_size, self.image_size), mode="bicubic",
                                align_corners=False).clamp(0, 1)
        return (img - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.trunk
        h = t.patch_embed.proj(self.preprocess(x)).flatten(2).transpose(1, 2)
        h = torch.cat([t.cls_token.expand(h.shape[0], -1, -1), h], dim=1) + t.pos_embed
        for block in t.blocks:
            h = block(h)
        return self.head.proj(t.norm(h)[:, 0])


def arch_from_open_clip(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    """The CLIPVision arch of an open_clip_config.json (a timm ViT tower only)."""
    model_cfg = cfg.get("model_cfg", cfg)
    vision = model_cfg.get("vision_cfg") or {}
    name = vision.get("timm_model_name")
    m = _VIT_NAME.match(name or "")
    if m is None:
        raise WeightsError(f"{where}: vision tower {name or 'without timm_model_name'!r} is not "
                           "a timm ViT (vit_<tiny|small|base|large>_patch<P>_<S>), as "
                           "BiomedCLIP's")
    if vision.get("timm_pool", "") not in ("", "token") or \
            vision.get("timm_proj", "linear") != "linear":
        raise WeightsError(f"{where}: only class-token pooling with a linear projection "
                           "(BiomedCLIP's timm_pool '' / timm_proj 'linear') is supported")
    width, depth, heads = _VIT_SIZES[m.group(1)]
    pre = cfg.get("preprocess_cfg") or {}
    return {"width": width, "depth": depth, "heads": heads, "patch": int(m.group(2)),
            "image_size": int(vision.get("image_size", m.group(3))),
            "embed_dim": int(model_cfg["embed_dim"]),
            "proj_bias": bool(vision.get("timm_proj_bias", False)),
            "mean": list(pre.get("mean", CLIP_MEAN)), "std": list(pre.get("std", CLIP_STD)),
            "timm_model_name": name}


def load_clip(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(arch, CLIPVision state dict) of a local open_clip folder (``--set clip=PATH``).

    Raises:
        WeightsError: folder absent, config or weights missing/unreadable, a pickle that is
            not plain tensors, or weights that do not fit the tower the config describes.
    """
    folder = Path(str(path)).expanduser()
    cfg_path = folder / "open_clip_config.json"
    if not folder.is_dir() or not cfg_path.is_file():
        raise WeightsError(f"clip={folder}: not an open_clip folder (no open_clip_config.json)")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{cfg_path}: unreadable ({exc})") from exc
    if not isinstance(cfg, dict):
        raise WeightsError(f"{cfg_path}: not a mapping")
    arch = arch_from_open_clip(cfg, str(cfg_path))
    weights = next((folder / n for n in _WEIGHTS if (folder / n).is_file()), None)
    if weights is None:
        raise WeightsError(f"{folder}: no {' or '.join(_WEIGHTS)}")
    tensors = read_tensors(weights)
    state = {k[len("visual."):]: v for k, v in tensors.items() if k.startswith("visual.")}
    try:
        CLIPVision(arch).load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise WeightsError(f"{weights}: does not fit {arch['timm_model_name']} ({first[:200]})"
                           ) from exc
    return arch, state
