"""The NCSN++ U-Net with adaptive group norm: SynDiff's diffusive generator.

Ozbey, Dalmaz et al., "Unsupervised Medical Image Translation with Adversarial Diffusion
Models", IEEE TMI 2023, Sec. III-B; the backbone is NCSN++ (Song et al. 2021) as adapted by
DDGAN (Xiao et al. 2022). Paper configuration: nf=64, ch_mult (1,1,2,2,4,4), two residual
blocks per level, attention at 16x16 and in the middle, BigGAN-style blocks with FIR
[1,3,3,1] resampling, progressive "residual" input pyramid, skip rescale 1/sqrt(2),
sinusoidal time embedding, z in R^100 -> pixel norm -> 4 dense layers -> 256, tanh output
(39.7 M parameters at 256x256).

The network maps ``(x_{t+1}, source)`` stacked on channels, the step index ``t`` (B,) and a
latent ``z`` (B, nz) to ``x0_hat`` in [-1, 1].

Example:
    >>> import torch
    >>> cfg = NCSNppConfig(image_size=32, nf=8, ch_mult=(1, 2), attn_resolutions=(16,),
    ...                    z_emb_dim=16, nz=4)
    >>> g = NCSNpp(cfg)
    >>> g(torch.zeros(2, 2, 32, 32), torch.tensor([0, 3]), torch.randn(2, 4)).shape
    torch.Size([2, 1, 32, 32])
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medxlate.models.nets.ncsnpp_blocks import (
    SKIP_SCALE,
    AttnBlock,
    LatentMLP,
    PyramidDown,
    ResBlock,
    conv,
    dense,
    num_groups,
    timestep_embedding,
)


@dataclass(frozen=True)
class NCSNppConfig:
    """Architecture of the generator (defaults: the paper's 256x256 configuration)."""

    image_size: int = 256
    in_channels: int = 2
    out_channels: int = 1
    nf: int = 64
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4, 4)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    nz: int = 100
    z_emb_dim: int = 256
    n_mlp: int = 3
    dropout: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NCSNppConfig:
        names = {f.name for f in fields(cls)}
        kwargs = {k: (tuple(v) if isinstance(v, list) else v)
                  for k, v in data.items() if k in names}
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def layout(cfg: NCSNppConfig) -> Iterator[tuple[str, str, dict[str, int]]]:
    """The generator's modules in execution order: (name, kind, sizes).

    Kinds: "time0", "time1" (time MLP), "stem", "res", "attn", "down" (a downsampling
    res block), "pyramid", "up" (an upsampling res block), "out_norm", "out_conv". The
    weight converter walks the same sequence, so names here are the single source of truth.
    """
    nf, levels = cfg.nf, len(cfg.ch_mult)
    res = [cfg.image_size // 2 ** i for i in range(levels)]
    yield "time_embed.0", "time0", {"in": nf, "out": 4 * nf}
    yield "time_embed.1", "time1", {"in": 4 * nf, "out": 4 * nf}
    yield "stem", "stem", {"in": cfg.in_channels, "out": nf}
    skips, ch, pyr = [nf], nf, cfg.in_channels
    for lv in range(levels):
        for b in range(cfg.num_res_blocks):
            out = nf * cfg.ch_mult[lv]
            yield f"down.{lv}.blocks.{b}", "res", {"in": ch, "out": out}
            ch = out
            if res[lv] in cfg.attn_resolutions:
                yield f"down.{lv}.attns.{b}", "attn", {"in": ch}
            skips.append(ch)
        if lv != levels - 1:
            yield f"down.{lv}.downsample", "down", {"in": ch, "out": ch}
            yield f"down.{lv}.pyramid", "pyramid", {"in": pyr, "out": ch}
            pyr = ch
            skips.append(ch)
    yield "mid.block0", "res", {"in": ch, "out": ch}
    yield "mid.attn", "attn", {"in": ch}
    yield "mid.block1", "res", {"in": ch, "out": ch}
    for lv in reversed(range(levels)):
        for b in range(cfg.num_res_blocks + 1):
            out = nf * cfg.ch_mult[lv]
            yield f"up.{lv}.blocks.{b}", "res", {"in": ch + skips.pop(), "out": out}
            ch = out
        if res[lv] in cfg.attn_resolutions:
            yield f"up.{lv}.attn", "attn", {"in": ch}
        if lv != 0:
            yield f"up.{lv}.upsample", "up", {"in": ch, "out": ch}
    assert not skips
    yield "out_norm", "out_norm", {"in": ch}
    yield "out_conv", "out_conv", {"in": ch, "out": cfg.out_channels}


class NCSNpp(nn.Module):
    """NCSN++ generator ``G(x_{t+1} ++ source, t, z) -> x0_hat`` (see module docstring).

    Attributes:
        cpu_chunk: without autograd on CPU, evaluate a batch this many slices at a time
            (0, the default: all at once). Every layer is per-sample, so the result is the
            same; a one-slice working set (16 MB per 64-channel 256x256 activation) fits
            caches better than batch 8's 134 MB, but on the shared 2-core test machine the
            measured effect ranged from 9% faster to 25% slower, so it is off by default
            (benchmarks/syndiff_generator.py reports both).
    """

    cpu_chunk: int = 0

    def __init__(self, cfg: NCSNppConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or NCSNppConfig()
        temb, zemb = 4 * cfg.nf, cfg.z_emb_dim
        self.latent_mlp = LatentMLP(cfg.nz, zemb, cfg.n_mlp)
        self.time_embed = nn.ModuleList()
        self.down = nn.ModuleDict()
        self.up = nn.ModuleDict()
        self.mid = nn.ModuleDict()
        for name, kind, s in layout(cfg):
            if kind in ("time0", "time1"):
                module: nn.Module = dense(s["in"], s["out"])
            elif kind == "stem":
                module = conv(s["in"], s["out"])
            elif kind in ("res", "down", "up"):
                module = ResBlock(s["in"], s["out"], temb, zemb, up=kind == "up",
                                  down=kind == "down", dropout=cfg.dropout)
            elif kind == "attn":
                module = AttnBlock(s["in"])
            elif kind == "pyramid":
                module = PyramidDown(s["in"], s["out"])
            elif kind == "out_norm":
                module = nn.GroupNorm(num_groups(s["in"]), s["in"], eps=1e-6)
            else:
                module = conv(s["in"], s["out"], scale=0.0)
            self._place(name, module)
        # Activations run channels-last; weights in the same layout spare oneDNN a reorder
        # of every convolution weight at every call (1.2 s of a 256x256 evaluation on CPU).
        self.to(memory_format=torch.channels_last)

    def _place(self, name: str, module: nn.Module) -> None:
        parts = name.split(".")
        if parts[0] == "time_embed":
            self.time_embed.append(module)
            return
        if len(parts) == 1:
            setattr(self, name, module)
            return
        parent: nn.Module = getattr(self, parts[0])
        for part in parts[1:-1]:
            if part not in parent._modules:
                parent.add_module(part, nn.ModuleDict())
            parent = parent._modules[part]
        parent.add_module(parts[-1], module)

    @property
    def levels(self) -> int:
        return len(self.cfg.ch_mult)

    def forward(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """x: (B, in_channels, H, W), H and W multiples of 2**(levels-1); t: (B,) step
        indices; z: (B, nz). Returns (B, out_channels, H, W) in [-1, 1]."""
        multiple = 2 ** (self.levels - 1)
        if x.shape[-1] % multiple or x.shape[-2] % multiple:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not a multiple of {multiple}")
        c = self.cpu_chunk
        if 0 < c < x.shape[0] and x.device.type == "cpu" and not torch.is_grad_enabled():
            return torch.cat([self._forward(x[i:i + c], t[i:i + c], z[i:i + c])
                              for i in range(0, x.shape[0], c)])
        return self._forward(x, t, z)

    def _forward(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        zemb = self.latent_mlp(z)
        temb = timestep_embedding(t, cfg.nf)
        temb = self.time_embed[1](F.silu(self.time_embed[0](temb)))
        temb = F.silu(temb)  # every block applies silu before its own projection
        x = x.contiguous(memory_format=torch.channels_last)
        pyramid = x
        hs = [self.stem(x)]
        for lv in range(self.levels):
            level = self.down[str(lv)]
            attns = level._modules.get("attns")
            for b in range(cfg.num_res_blocks):
                h = level["blocks"][str(b)](hs[-1], temb, zemb)
                if attns is not None:
                    h = attns[str(b)](h)
                hs.append(h)
            if lv != self.levels - 1:
                h = level["downsample"](hs[-1], temb, zemb)
                pyramid = level["pyramid"](pyramid)
                pyramid = (pyramid + h) * SKIP_SCALE
                h = pyramid
                hs.append(h)
        h = self.mid["block0"](hs[-1], temb, zemb)
        h = self.mid["attn"](h)
        h = self.mid["block1"](h, temb, zemb)
        for lv in reversed(range(self.levels)):
            level = self.up[str(lv)]
            for b in range(cfg.num_res_blocks + 1):
                h = level["blocks"][str(b)](torch.cat([h, hs.pop()], dim=1), temb, zemb)
            if "attn" in level._modules:
                h = level["attn"](h)
            if lv != 0:
                h = level["upsample"](h, temb, zemb)
        h = F.silu(self.out_norm(h))
        h = torch.tanh(self.out_conv(h))
        return h.contiguous()
