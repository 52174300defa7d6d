"""The conditional diffusion U-Net of improved-diffusion (Nichol & Dhariwal 2021, App. A)
with the source image concatenated to the noisy target as extra input channels
(Saharia et al. 2022, "Palette"; the conditional DDPM of Lyu & Wang 2022 for MR->CT).

Example:
    >>> import torch
    >>> net = UNet(in_channels=2, out_channels=2, model_channels=32, channel_mult=(1, 2),
    ...            num_res_blocks=1, attention_ds=(2,))
    >>> x, cond = torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 32)
    >>> net(x, torch.tensor([10]), cond).shape
    torch.Size([1, 2, 32, 32])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from medxlate.models.nets.blocks import (
    AttentionBlock,
    Downsample,
    ResBlock,
    Upsample,
    group_norm,
    timestep_embedding,
    zero_module,
)


class UNet(nn.Module):
    """``forward(x_t, t, cond) -> output``, with ``cond`` concatenated to ``x_t``.

    Args:
        in_channels: channels of ``x_t`` plus channels of ``cond``.
        out_channels: output channels (2 per image channel for learned-range variance).
        model_channels: base width.
        channel_mult: width multiplier per resolution level (one level per entry).
        num_res_blocks: residual blocks per level on the way down (one more on the way up).
        attention_ds: downsampling factors (1, 2, 4...) whose levels get self-attention.
        dropout: dropout inside residual blocks.
        head_channels: channels per attention head.
    """

    def __init__(self, in_channels: int, out_channels: int, model_channels: int = 128,
                 channel_mult: Sequence[int] = (1, 1, 2, 2, 4, 4), num_res_blocks: int = 2,
                 attention_ds: Sequence[int] = (16, 32), dropout: float = 0.0,
                 head_channels: int = 64):
        super().__init__()
        self.levels = len(channel_mult)
        emb_dim = 4 * model_channels
        self.model_channels = model_channels
        self.time_embed = nn.Sequential(nn.Linear(model_channels, emb_dim), nn.SiLU(),
                                        nn.Linear(emb_dim, emb_dim))
        self.input_conv = nn.Conv2d(in_channels, model_channels, 3, padding=1)
        self.down = nn.ModuleList()
        skips, ch, ds = [model_channels], model_channels, 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [ResBlock(ch, emb_dim, mult * model_channels, dropout)]
                ch = mult * model_channels
                if ds in attention_ds:
                    layers.append(AttentionBlock(ch, head_channels))
                self.down.append(nn.ModuleList(layers))
                skips.append(ch)
            if level != self.levels - 1:
                self.down.append(nn.ModuleList([Downsample(ch)]))
                skips.append(ch)
                ds *= 2
        self.middle = nn.ModuleList([ResBlock(ch, emb_dim, ch, dropout),
                                     AttentionBlock(ch, head_channels),
                                     ResBlock(ch, emb_dim, ch, dropout)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [ResBlock(ch + skips.pop(), emb_dim, mult * model_channels, dropout)]
                ch = mult * model_channels
                if ds in attention_ds:
                    layers.append(AttentionBlock(ch, head_channels))
                if level and i == num_res_blocks:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.up.append(nn.ModuleList(layers))
        self.out = nn.Sequential(group_norm(ch), nn.SiLU(),
                                 zero_module(nn.Conv2d(ch, out_channels, 3, padding=1)))

    @staticmethod
    def _run(layers: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        return h

    def forward(self, x: torch.Tensor, t: torch.Tensor,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        multiple = 2 ** (self.levels - 1)
        if x.shape[-1] % multiple or x.shape[-2] % multiple:
            raise ValueError(f"UNet with {self.levels} levels needs H and W divisible by "
                             f"{multiple}, got {tuple(x.shape[-2:])}")
        if cond is not None:
            x = torch.cat([x, cond.to(x.dtype)], dim=1)
        emb = self.time_embed(timestep_embedding(t, self.model_channels))
        h = self.input_conv(x)
        hs = [h]
        for layers in self.down:
            h = self._run(layers, h, emb)
            hs.append(h)
        h = self._run(self.middle, h, emb)
        for layers in self.up:
            h = self._run(layers, torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)
