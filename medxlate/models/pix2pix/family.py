"""pix2pix training and translation (Isola et al., CVPR 2017).

Objective (Eq. 4 of the paper): ``G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G)`` with
``L_cGAN = E[log D(x, y)] + E[log(1 - D(x, G(x)))]`` (the conditional discriminator sees the
source ``x`` concatenated with a real or generated target), ``L_L1 = E|y - G(x)|_1`` and
``lambda = 100``. As in the paper the generator maximises ``log D(x, G(x))`` (non-saturating
form) and the discriminator loss is halved to slow D relative to G.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medxlate.diffusion.samplers import one_shot
from medxlate.models.nets.gan_losses import gan_loss, requires_grad, source_target
from medxlate.models.nets.patchgan import PatchGAN
from medxlate.models.nets.unet_generator import UnetGenerator, dropout_noise


class Pix2Pix:
    """The pix2pix :class:`~medxlate.models.family.Family`: networks ``G`` and ``D``."""

    def build(self, config: dict[str, Any]) -> dict[str, nn.Module]:
        channels = 2 * int(config.get("context", 0)) + 1
        g = UnetGenerator(channels, 1, ngf=config["ngf"], n_downs=config["n_downs"],
                          norm=config["norm"], dropout=config["dropout"],
                          n_dropout=config["n_dropout"])
        d = PatchGAN(channels + 1, ndf=config["ndf"], n_layers=config["d_layers"],
                     norm=config["norm"])
        return {"G": g, "D": d}

    def optimizers(self, nets: dict[str, nn.Module],
                   config: dict[str, Any]) -> dict[str, torch.optim.Optimizer]:
        betas = tuple(config["betas"])
        return {name: torch.optim.Adam(nets[name].parameters(), lr=config["lr"], betas=betas)
                for name in ("G", "D")}

    def inference_nets(self, config: dict[str, Any]) -> list[str]:
        return ["G"]

    def d_loss(self, nets: dict[str, nn.Module], source: torch.Tensor, target: torch.Tensor,
               fake: torch.Tensor, config: dict[str, Any]) -> torch.Tensor:
        """Discriminator loss, halved as in the paper; ``fake`` is detached here."""
        d, mode = nets["D"], config.get("gan_mode", "vanilla")
        real_logits = d(torch.cat([source, target], 1))
        fake_logits = d(torch.cat([source, fake.detach()], 1))
        return 0.5 * (gan_loss(real_logits, True, mode) + gan_loss(fake_logits, False, mode))

    def g_loss(self, nets: dict[str, nn.Module], source: torch.Tensor, target: torch.Tensor,
               fake: torch.Tensor, config: dict[str, Any]) -> tuple[torch.Tensor, dict]:
        """Generator loss ``L_cGAN + lambda_l1 * L_L1`` (D frozen: no gradient reaches D)."""
        d, mode = nets["D"], config.get("gan_mode", "vanilla")
        with requires_grad(d, False):
            adv = gan_loss(d(torch.cat([source, fake], 1)), True, mode)
        l1 = F.l1_loss(fake.float(), target.float())
        logs = {"g_gan": float(adv.detach()), "g_l1": float(l1.detach())}
        return adv + float(config["lambda_l1"]) * l1, logs

    def training_step(self, nets: dict[str, nn.Module], batch: dict[str, torch.Tensor],
                      ctx, config: dict[str, Any]) -> dict[str, float]:
        source, target = source_target(batch, config)
        with ctx.autocast():
            fake = nets["G"](source)
            loss_d = self.d_loss(nets, source, target, fake, config)
        ctx.backward(loss_d)
        ctx.step("D")
        # G's adversarial term goes through the freshly updated D (the paper alternates one
        # D step and one G step on the same batch).
        with ctx.autocast():
            loss_g, logs = self.g_loss(nets, source, target, fake, config)
        ctx.backward(loss_g)
        ctx.step("G")
        return {**logs, "d": float(loss_d.detach())}

    def stochastic(self, config: dict[str, Any]) -> bool:
        """Random only with the paper's test-time dropout (``config["test_dropout"]``)."""
        return bool(config.get("test_dropout", False))

    @torch.no_grad()
    def translate(self, nets: dict[str, nn.Module], source: torch.Tensor, *,
                  config: dict[str, Any], sampler: str = "one-shot", steps: int | None = None,
                  eta: float = 0.0, generator: torch.Generator | None = None,
                  callback=None) -> torch.Tensor:
        """One generator pass; with ``config["test_dropout"]`` dropout is the noise (paper)."""
        check_one_shot(sampler, "pix2pix")
        g = nets["G"]
        if config.get("test_dropout", False):
            with dropout_noise(g, generator):
                return one_shot(g, None, cond=source, callback=callback)
        return one_shot(g, None, cond=source, callback=callback)


def check_one_shot(sampler: str, model: str) -> None:
    """GAN generators have a single, one-shot sampling path.

    ``steps`` is ignored rather than refused here because the training engine's validation
    passes its ``val_steps`` to every family; `synthesize` refuses --steps for one-shot.
    """
    from medxlate.errors import UsageError

    if sampler != "one-shot":
        raise UsageError(f"{model} is a one-shot generator: sampler {sampler!r} does not apply "
                         "(use --sampler one-shot)")


FAMILY = Pix2Pix()
