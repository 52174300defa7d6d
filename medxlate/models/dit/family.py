"""The torch side of the latent DiT baseline (see medxlate/models/family.py)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medxlate.errors import UsageError
from medxlate.models.dit import latent
from medxlate.models.dit.net import DiT, TimestepEmbedder

CONDITIONINGS = ("concat", "pooled")


class PooledLatent(nn.Module):
    """Source latent -> one adaLN vector: patch embedding, mean over tokens, MLP."""

    def __init__(self, channels: int, hidden: int, patch: int) -> None:
        super().__init__()
        self.embed = nn.Conv2d(channels, hidden, patch, stride=patch)
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.embed(z).mean(dim=(2, 3)))


class ConditionalDiT(nn.Module):
    """``forward(x_t, t, z_src) -> (B, 2C, S, S)``: eps and variance values.

    ``concat``: the DiT sees cat(x_t, z_src) and c = t_emb; ``pooled``: it sees x_t and
    c = t_emb + PooledLatent(z_src).
    """

    def __init__(self, channels: int, size: int, patch: int, hidden: int, depth: int,
                 heads: int, conditioning: str = "concat", mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if conditioning not in CONDITIONINGS:
            raise UsageError(f"conditioning={conditioning!r}: choose from "
                             f"{', '.join(CONDITIONINGS)}")
        self.conditioning = conditioning
        self.t_embedder = TimestepEmbedder(hidden)
        in_channels = 2 * channels if conditioning == "concat" else channels
        self.pool = PooledLatent(channels, hidden, patch) if conditioning == "pooled" else None
        self.dit = DiT(in_channels, 2 * channels, size, patch, hidden, depth, heads, hidden,
                       mlp_ratio)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)

    def forward(self, x: torch.Tensor, t: torch.Tensor, z_src: torch.Tensor) -> torch.Tensor:
        c = self.t_embedder(t)
        if self.pool is None:
            x = torch.cat([x, z_src.to(x.dtype)], dim=1)
        else:
            c = c + self.pool(z_src)
        return self.dit(x, c)


class DiTFamily:
    """Nets: ``"dit"`` (trained) and ``"vae"`` (frozen, shipped in the checkpoint)."""

    name = "dit"

    def pretrained(self, config: dict[str, Any]):
        return latent.read_vae(config, self.name)

    def build(self, config: dict[str, Any]) -> dict[str, nn.Module]:
        vae = latent.build_vae(config, self.name)
        net = ConditionalDiT(vae.latent_channels, latent.latent_size(config),
                             int(config["patch"]), int(config["hidden"]), int(config["depth"]),
                             int(config["heads"]), config["conditioning"],
                             float(config["mlp_ratio"]))
        return {"dit": net, "vae": vae}

    def optimizers(self, nets, config):
        return {"dit": torch.optim.AdamW(nets["dit"].parameters(), lr=float(config["lr"]),
                                         weight_decay=float(config["weight_decay"]))}

    def inference_nets(self, config: dict[str, Any]) -> list[str]:
        return ["dit", "vae"]

    def training_step(self, nets, batch, ctx, config) -> dict[str, float]:
        dit, vae = nets["dit"], nets["vae"].eval()
        source, target = latent.source_target(batch, config)
        with torch.no_grad():
            z_src = vae.encode(source)
            z0 = vae.encode(target, generator=ctx.generator)
        return latent.denoiser_step(dit, z0, z_src, ctx, config)

    @torch.no_grad()
    def translate(self, nets, source: torch.Tensor, *, config: dict[str, Any], sampler: str,
                  steps: int | None, eta: float, generator: torch.Generator | None,
                  callback=None) -> torch.Tensor:
        return latent.translate_slices(nets["dit"], nets["vae"], source,
                                       lambda _centre, z_src: z_src, config, sampler=sampler,
                                       steps=steps, eta=eta, generator=generator,
                                       callback=callback)


FAMILY = DiTFamily()
