"""The torch side of Med-DiT (see medxlate/models/family.py and medxlate/train/stages.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from medxlate.errors import UsageError, WeightsError
from medxlate.models.dit import latent
from medxlate.models.dit.net import DiT, TimestepEmbedder
from medxlate.models.med_dit.clip import CLIPVision, load_clip
from medxlate.models.med_dit.embedder import VisionEmbedder, info_nce


def uses_clip(config: dict[str, Any]) -> bool:
    return bool(config.get("clip_arch"))


def eq6_condition(e_ve_mean: torch.Tensor, t_emb: torch.Tensor,
                  e_clip: torch.Tensor | None) -> torch.Tensor:
    """Eq. 6 of the seed: c = concat(mean_L(e_ve) + t, e_clip + t); without CLIP the first
    half alone."""
    first = e_ve_mean + t_emb
    return first if e_clip is None else torch.cat([first, e_clip + t_emb], dim=1)


class MedDiTNet(nn.Module):
    """``forward(x_t, t, cond)``, cond = cat(mean_L(e_ve), raw e_clip) (B, D [+ E])."""

    def __init__(self, channels: int, size: int, patch: int, hidden: int, depth: int,
                 heads: int, clip_dim: int | None, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.hidden = hidden
        self.t_embedder = TimestepEmbedder(hidden)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        self.clip_proj = nn.Linear(clip_dim, hidden) if clip_dim else None
        cond_dim = 2 * hidden if clip_dim else hidden
        self.dit = DiT(channels, 2 * channels, size, patch, hidden, depth, heads, cond_dim,
                       mlp_ratio)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        t_emb = self.t_embedder(t)
        e_ve = cond[:, :self.hidden].to(t_emb.dtype)
        e_clip = None
        if self.clip_proj is not None:
            e_clip = self.clip_proj(cond[:, self.hidden:].to(t_emb.dtype))
        return self.dit(x, eq6_condition(e_ve, t_emb, e_clip))


class MedDiTFamily:
    """Nets: ``"embedder"`` (f_ve), ``"dit"``, ``"vae"`` and, with CLIP, ``"clip"``."""

    name = "med-dit"

    def stages(self, config: dict[str, Any]):
        return [("embedder", int(config["embedder_steps"])), ("dit", None)]

    def pretrained(self, config: dict[str, Any]):
        updates, states = latent.read_vae(config, self.name)
        clip = config.get("clip")
        if clip and str(clip).lower() != "none":
            arch, states["clip"] = load_clip(clip)
            updates.update(clip=str(clip), clip_arch=arch)
        else:
            updates.update(clip="none", clip_arch=None)
        if config.get("embedder"):
            states["embedder"] = self._embedder_weights(Path(config["embedder"]), states["vae"])
        elif config.get("stage") == "dit":
            raise UsageError("--stage dit trains with a frozen, pretrained vision embedder: "
                             "pass --set embedder=RUN/model.safetensors of a --stage embedder "
                             "run (or run both stages: no --stage)")
        return updates, states

    @staticmethod
    def _embedder_weights(path: Path, vae_state) -> dict[str, torch.Tensor]:
        from medxlate.weights import load_checkpoint

        tensors, meta = load_checkpoint(path)
        if meta.model != "med-dit":
            raise WeightsError(f"embedder={path}: a {meta.model!r} checkpoint, not med-dit")
        theirs = {k[4:]: v for k, v in tensors.items() if k.startswith("vae.")}
        if theirs.keys() != vae_state.keys() or any(
                not torch.equal(theirs[k], vae_state[k].to(theirs[k].dtype)) for k in theirs):
            raise WeightsError(f"embedder={path}: trained on another VAE's latents (pass the "
                               "same --set vae=PATH as its run)")
        return {k[9:]: v for k, v in tensors.items() if k.startswith("embedder.")}

    def build(self, config: dict[str, Any]) -> dict[str, nn.Module]:
        vae = latent.build_vae(config, self.name)
        size, hidden = latent.latent_size(config), int(config["hidden"])
        nets: dict[str, nn.Module] = {
            "embedder": VisionEmbedder(vae.latent_channels, size, int(config["embedder_patch"]),
                                       hidden, int(config["embedder_reduction"])),
            "dit": MedDiTNet(vae.latent_channels, size, int(config["patch"]), hidden,
                             int(config["depth"]), int(config["heads"]),
                             config["clip_arch"]["embed_dim"] if uses_clip(config) else None,
                             float(config["mlp_ratio"])),
            "vae": vae}
        if uses_clip(config):
            nets["clip"] = CLIPVision(config["clip_arch"]).eval().requires_grad_(False)
        return nets

    def optimizers(self, nets, config):
        return {"embedder": torch.optim.AdamW(nets["embedder"].parameters(),
                                              lr=float(config["embedder_lr"]),
                                              weight_decay=float(config["weight_decay"])),
                "dit": torch.optim.AdamW(nets["dit"].parameters(), lr=float(config["lr"]),
                                         weight_decay=float(config["weight_decay"]))}

    def inference_nets(self, config: dict[str, Any]) -> list[str]:
        return ["embedder", "dit", "vae"] + (["clip"] if uses_clip(config) else [])

    @torch.no_grad()
    def condition(self, nets, source: torch.Tensor, z_src: torch.Tensor) -> torch.Tensor:
        """cat(mean_L(e_ve), e_clip) of source slices (frozen f_ve and f_clip)."""
        parts = [nets["embedder"](z_src).float().mean(dim=1)]
        if "clip" in nets:
            parts.append(nets["clip"](source).float())
        return torch.cat(parts, dim=1)

    def training_step(self, nets, batch, ctx, config) -> dict[str, float]:
        vae = nets["vae"].eval()
        source, target = latent.source_target(batch, config)
        with torch.no_grad():
            z_src = vae.encode(source)
        if ctx.stage == "embedder":
            nets["embedder"].train()
            with ctx.autocast():
                e_ve = nets["embedder"](z_src)
            loss = info_nce(e_ve.float(), float(config["tau"]))
            ctx.backward(loss)
            ctx.step("embedder")
            return {"loss": float(loss.detach()), "info_nce": float(loss.detach())}
        nets["embedder"].eval()
        cond = self.condition(nets, source, z_src)
        with torch.no_grad():
            z0 = vae.encode(target, generator=ctx.generator)
        return latent.denoiser_step(nets["dit"], z0, cond, ctx, config)

    @torch.no_grad()
    def translate(self, nets, source: torch.Tensor, *, config: dict[str, Any], sampler: str,
                  steps: int | None, eta: float, generator: torch.Generator | None,
                  callback=None) -> torch.Tensor:
        nets["embedder"].eval()
        return latent.translate_slices(
            nets["dit"], nets["vae"], source,
            lambda centre, z_src: self.condition(nets, centre, z_src), config,
            sampler=sampler, steps=steps, eta=eta, generator=generator, callback=callback)


FAMILY = MedDiTFamily()
