"""One SynDiff diffusive chain (Sec. III-B, Ozbey, Dalmaz et al., IEEE TMI 2023): generator,
discriminator and schedule, shared by the paired step (family.py) and the unpaired one
(unpaired.py)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medxlate.diffusion.schedules import VPSchedule, syndiff_vp
from medxlate.models.nets.gan_losses import requires_grad
from medxlate.models.syndiff.losses import (
    d_fake_loss,
    d_real_loss,
    g_adv_loss,
    posterior_sample,
    r1_penalty,
)


def schedule(config: dict[str, Any]) -> VPSchedule:
    return syndiff_vp(int(config["n_steps"]), float(config["beta_min"]),
                      float(config["beta_max"]))


class Chain:
    """One diffusive chain: generator G, discriminator D and the schedule (Sec. III-B)."""

    def __init__(self, g: nn.Module, d: nn.Module, sched: VPSchedule, ctx,
                 config: dict[str, Any]) -> None:
        self.g, self.d, self.sched, self.ctx, self.config = g, d, sched, ctx, config
        self.post = sched.posterior()

    def _pairs(self, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gen = self.ctx.generator
        t = torch.randint(0, self.sched.n_steps, (x0.shape[0],), generator=gen,
                          device=x0.device)
        x_t, x_tp1 = self.sched.q_sample_pairs(x0, t, generator=gen)
        return t, x_t, x_tp1

    def _z(self, x0: torch.Tensor) -> torch.Tensor:
        return torch.randn((x0.shape[0], self.g.cfg.nz), generator=self.ctx.generator,
                           device=x0.device, dtype=x0.dtype)

    def fake(self, x_tp1: torch.Tensor, cond: torch.Tensor, t: torch.Tensor,
             x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0_hat, posterior sample x_t) for the noisy x_{t+1} and the condition."""
        x0_hat = self.g(torch.cat([x_tp1, cond], dim=1), t, self._z(x0))
        return x0_hat, posterior_sample(self.post, x0_hat, x_tp1, t, self.ctx.generator)

    def d_step(self, x0: torch.Tensor, cond: torch.Tensor) -> dict[str, float]:
        """Backpropagate D's loss on real pairs (+ lazy R1) and on generated pairs."""
        ctx, cfg = self.ctx, self.config
        t, x_t, x_tp1 = self._pairs(x0)
        x_t = x_t.detach().requires_grad_(True)
        with ctx.autocast():
            real = self.d(x_t, t, x_tp1).view(-1)
            loss = d_real_loss(real)
        lazy = int(cfg.get("lazy_reg") or 1)
        r1 = torch.zeros(())
        if float(cfg["r1_gamma"]) > 0 and ctx.step_index % lazy == 0:
            r1 = r1_penalty(real.float(), x_t, float(cfg["r1_gamma"]))
        with torch.no_grad(), ctx.autocast():
            _, x_pos = self.fake(x_tp1, cond.detach(), t, x0)
        with ctx.autocast():
            fake = d_fake_loss(self.d(x_pos.detach(), t, x_tp1).view(-1))
        ctx.backward(loss + r1 + fake)
        return {"d_real": float(loss.detach()), "d_fake": float(fake.detach()),
                "r1": float(r1.detach())}

    def g_loss(self, x0: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Adversarial diffusion loss + lambda_l1 * L1(x0_hat, x0) (D frozen)."""
        t, _, x_tp1 = self._pairs(x0)
        with self.ctx.autocast(), requires_grad(self.d, False):
            x0_hat, x_pos = self.fake(x_tp1, cond, t, x0)
            adv = g_adv_loss(self.d(x_pos, t, x_tp1).view(-1))
        l1 = F.l1_loss(x0_hat.float(), x0.float())
        loss = adv + float(self.config["lambda_l1"]) * l1
        return loss, {"g_adv": float(adv.detach()), "g_l1": float(l1.detach())}
