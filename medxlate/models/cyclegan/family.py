"""CycleGAN training and translation (Zhu et al., ICCV 2017).

Networks: ``G_mr2ct`` (G: MR -> CT), ``G_ct2mr`` (F: CT -> MR), ``D_ct`` and ``D_mr``.
Full objective (Eq. 3 of the paper) with the least-squares GAN loss of section 4::

    L = L_LSGAN(G, D_ct) + L_LSGAN(F, D_mr) + lambda_cyc * L_cyc(G, F) [+ L_identity]
    L_cyc = E|F(G(mr)) - mr|_1 + E|G(F(ct)) - ct|_1                       (Eq. 2)
    L_identity = lambda_id * lambda_cyc * (E|G(ct) - ct|_1 + E|F(mr) - mr|_1)   (sec. 5.2)

with lambda_cyc = 10 and lambda_id = 0.5. Each discriminator minimises
``0.5 * (E[(D(real) - 1)^2] + E[D(fake)^2])`` on fakes drawn from an image pool.
The MR and CT batches are unpaired: no loss compares an MR slice with a CT slice.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medxlate.diffusion.samplers import one_shot
from medxlate.models.cyclegan.pool import ImagePool
from medxlate.models.nets.gan_losses import gan_loss, requires_grad
from medxlate.models.nets.patchgan import PatchGAN
from medxlate.models.nets.resnet_generator import ResnetGenerator
from medxlate.models.pix2pix.family import check_one_shot

GENERATOR_OF = {"mri2ct": "G_mr2ct", "ct2mri": "G_ct2mr"}


class CycleGAN:
    """The CycleGAN :class:`~medxlate.models.family.Family`."""

    def __init__(self) -> None:
        # Image pools belong to one training run: keyed by that run's discriminator.
        self._pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def build(self, config: dict[str, Any]) -> dict[str, nn.Module]:
        if int(config.get("context", 0)) != 0:
            raise ValueError("cyclegan translates single slices (context 0): a generated "
                             "slice has no context slices to feed the reverse generator")

        def gen() -> ResnetGenerator:
            return ResnetGenerator(1, 1, ngf=config["ngf"], n_blocks=config["n_blocks"],
                                   norm=config["norm"])

        def disc() -> PatchGAN:
            return PatchGAN(1, ndf=config["ndf"], n_layers=config["d_layers"],
                            norm=config["norm"])

        return {"G_mr2ct": gen(), "G_ct2mr": gen(), "D_ct": disc(), "D_mr": disc()}

    def optimizers(self, nets: dict[str, nn.Module],
                   config: dict[str, Any]) -> dict[str, torch.optim.Optimizer]:
        betas, lr = tuple(config["betas"]), config["lr"]
        g_params = list(nets["G_mr2ct"].parameters()) + list(nets["G_ct2mr"].parameters())
        d_params = list(nets["D_ct"].parameters()) + list(nets["D_mr"].parameters())
        return {"G": torch.optim.Adam(g_params, lr=lr, betas=betas),
                "D": torch.optim.Adam(d_params, lr=lr, betas=betas)}

    def inference_nets(self, config: dict[str, Any]) -> list[str]:
        # Both generators ship: one checkpoint serves --direction mri2ct and ct2mri.
        return ["G_mr2ct", "G_ct2mr"]

    def directions(self, config: dict[str, Any]) -> tuple[str, ...]:
        """A CycleGAN checkpoint holds both generators, so it translates both ways."""
        return ("mri2ct", "ct2mri")

    def stochastic(self, config: dict[str, Any]) -> bool:
        """One generator pass with no noise input: repeated samples are identical."""
        return False

    def _pool(self, nets: dict[str, nn.Module], name: str, config: dict[str, Any]) -> ImagePool:
        key = nets[name]
        if key not in self._pools:
            self._pools[key] = ImagePool(int(config.get("pool_size", 0)))
        return self._pools[key]

    def g_loss(self, nets: dict[str, nn.Module], mr: torch.Tensor, ct: torch.Tensor,
               config: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Generator objective; returns the loss and the fakes (for the discriminators)."""
        g, f = nets["G_mr2ct"], nets["G_ct2mr"]
        mode, lam = config.get("gan_mode", "lsgan"), float(config["lambda_cycle"])
        fake_ct, fake_mr = g(mr), f(ct)
        with requires_grad(nets["D_ct"], False), requires_grad(nets["D_mr"], False):
            adv = gan_loss(nets["D_ct"](fake_ct), True, mode) + \
                gan_loss(nets["D_mr"](fake_mr), True, mode)
        cycle = F.l1_loss(f(fake_ct).float(), mr.float()) + F.l1_loss(g(fake_mr).float(),
                                                                      ct.float())
        loss = adv + lam * cycle
        logs = {"g_gan": float(adv.detach()), "cycle": float(cycle.detach())}
        lam_id = float(config.get("lambda_identity", 0.0))
        if lam_id > 0:
            identity = F.l1_loss(g(ct).float(), ct.float()) + F.l1_loss(f(mr).float(),
                                                                        mr.float())
            loss = loss + lam_id * lam * identity
            logs["identity"] = float(identity.detach())
        return loss, {"fake_ct": fake_ct, "fake_mr": fake_mr, **logs}

    def d_loss(self, nets: dict[str, nn.Module], real: torch.Tensor, fake: torch.Tensor,
               name: str, config: dict[str, Any]) -> torch.Tensor:
        """``0.5 * (E[(D(real) - 1)^2] + E[D(fake)^2])`` for discriminator ``name``."""
        d, mode = nets[name], config.get("gan_mode", "lsgan")
        return 0.5 * (gan_loss(d(real), True, mode) + gan_loss(d(fake.detach()), False, mode))

    def training_step(self, nets: dict[str, nn.Module], batch: dict[str, torch.Tensor],
                      ctx, config: dict[str, Any]) -> dict[str, float]:
        mr, ct = batch["mr"], batch["ct"]
        if mr.shape[1] != 1 or ct.shape[1] != 1:
            raise ValueError("cyclegan trains on single slices (config context 0)")
        with ctx.autocast():
            loss_g, out = self.g_loss(nets, mr, ct, config)
        ctx.backward(loss_g)
        ctx.step("G")
        fake_ct = self._pool(nets, "D_ct", config).query(out["fake_ct"], ctx.generator)
        fake_mr = self._pool(nets, "D_mr", config).query(out["fake_mr"], ctx.generator)
        with ctx.autocast():
            loss_d_ct = self.d_loss(nets, ct, fake_ct, "D_ct", config)
            loss_d_mr = self.d_loss(nets, mr, fake_mr, "D_mr", config)
        ctx.backward(loss_d_ct + loss_d_mr)
        ctx.step("D")
        logs = {k: v for k, v in out.items() if isinstance(v, float)}
        return {**logs, "g": float(loss_g.detach()), "d_ct": float(loss_d_ct.detach()),
                "d_mr": float(loss_d_mr.detach())}

    @torch.no_grad()
    def translate(self, nets: dict[str, nn.Module], source: torch.Tensor, *,
                  config: dict[str, Any], sampler: str = "one-shot", steps: int | None = None,
                  eta: float = 0.0, generator: torch.Generator | None = None,
                  callback=None) -> torch.Tensor:
        """One pass of the generator for ``config["direction"]`` (deterministic)."""
        check_one_shot(sampler, "cyclegan")
        g = nets[GENERATOR_OF[config.get("direction", "mri2ct")]]
        return one_shot(g, None, cond=source, callback=callback)


FAMILY = CycleGAN()
