"""The torch side of the KL autoencoder: L1 + KL (+ optional patch-adversarial) training.

Loss per slice (Rombach et al. 2022, KL-reg. autoencoder; Esser et al. 2021 for the patch
adversarial term): ``mean |x - x_hat| + kl_weight * KL(q(z|x) || N(0, I)) / (H W)`` (the KL
summed over the latent, divided by the pixels, i.e. LDM's per-pixel-summed loss scaled by
1/(H W)) ``+ adv_weight * (-mean D(x_hat))`` with a hinge PatchGAN D from step ``adv_start``.
MR and CT slices train one shared autoencoder (the dit/med-dit latents of both).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medxlate.errors import UsageError
from medxlate.models.nets.gan_losses import requires_grad
from medxlate.models.nets.patchgan import PatchGAN
from medxlate.models.vae.autoencoder import LatentVAE, arch_from_config


def vae_slices(batch: dict[str, torch.Tensor], config: dict[str, Any]) -> torch.Tensor:
    """MR and CT centre slices of a batch stacked along the batch axis, (2B, 1, H, W)."""
    k = int(config["context"])
    parts = [batch[m][:, k:k + 1] for m in ("mr", "ct") if m in batch]
    return torch.cat(parts, dim=0)


def kl_per_pixel(mean: torch.Tensor, logvar: torch.Tensor, pixels: int) -> torch.Tensor:
    """KL(N(mean, e^logvar) || N(0, I)) summed over each latent, divided by ``pixels``, (B,)."""
    kl = 0.5 * (mean ** 2 + torch.exp(logvar) - 1.0 - logvar)
    return kl.flatten(1).sum(1) / pixels


class VAEFamily:
    """Nets: ``"vae"`` (LatentVAE) and, when ``adv_weight > 0``, ``"disc"`` (PatchGAN)."""

    def build(self, config: dict[str, Any]) -> dict[str, nn.Module]:
        nets: dict[str, nn.Module] = {"vae": LatentVAE(arch_from_config(config))}
        if float(config.get("adv_weight", 0.0)) > 0:
            nets["disc"] = PatchGAN(1, ndf=int(config["ndf"]), n_layers=int(config["d_layers"]),
                                    norm="batch")
        return nets

    def optimizers(self, nets, config):
        betas = tuple(config["betas"])
        opts = {name: torch.optim.Adam(net.parameters(), lr=float(config["lr"]), betas=betas,
                                       weight_decay=float(config["weight_decay"]))
                for name, net in nets.items()}
        return opts

    def inference_nets(self, config: dict[str, Any]) -> list[str]:
        return ["vae"]

    def training_step(self, nets, batch, ctx, config) -> dict[str, float]:
        vae: LatentVAE = nets["vae"]
        x = vae_slices(batch, config)
        dist = vae.posterior(x)
        z = dist.sample(generator=ctx.generator)
        x_hat = vae.decode_raw(z).mean(dim=1, keepdim=True)
        l1 = (x_hat - x).abs().flatten(1).mean(1)
        kl = kl_per_pixel(dist.mean, dist.logvar, x.shape[-1] * x.shape[-2])
        loss = l1.mean() + float(config["kl_weight"]) * kl.mean()
        logs = {"l1": float(l1.detach().mean()), "kl": float(kl.detach().mean())}
        adversarial = "disc" in nets and ctx.step_index >= int(config["adv_start"])
        if adversarial:
            with requires_grad(nets["disc"], False), ctx.autocast():
                g_adv = -nets["disc"](x_hat).float().mean()
            loss = loss + float(config["adv_weight"]) * g_adv
            logs["g_adv"] = float(g_adv)
        ctx.backward(loss)
        ctx.step("vae")
        if "disc" in nets:
            if adversarial:
                with ctx.autocast():
                    real = nets["disc"](x).float()
                    fake = nets["disc"](x_hat.detach()).float()
                # Hinge loss (Lim & Ye 2017), as LDM's autoencoder discriminator.
                d_loss = 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())
                ctx.backward(d_loss)
                logs["d_loss"] = float(d_loss)
            ctx.step("disc")
        self._update_scale(vae, dist.mean.detach(), float(config["scale_momentum"]))
        logs["loss"] = float(loss.detach())
        logs["scaling_factor"] = float(vae.scaling_factor)
        return logs

    @staticmethod
    @torch.no_grad()
    def _update_scale(vae: LatentVAE, mean: torch.Tensor, momentum: float) -> None:
        # LDM's scale factor is 1 / std of the first batch's latents; a running estimate of
        # the latent variance over training keeps it current as the encoder learns.
        var = float(mean.float().var())
        old = 1.0 / float(vae.scaling_factor) ** 2
        vae.scaling_factor.fill_(((1 - momentum) * old + momentum * var) ** -0.5)

    def translate(self, nets, source, *, config, sampler, steps, eta, generator,
                  callback=None):
        raise UsageError("vae is the autoencoder of dit/med-dit and does not translate; "
                         "train those with --set vae=RUN/model.safetensors")


FAMILY = VAEFamily()
