"""SynDiff's cycle-consistent unpaired training step (Ozbey et al. 2023, Sec. III-C, Fig. 2).

For each contrast A in {mr, ct} (B the other one) with real images a (batches drawn
independently, so a and b are not aligned):

* the non-diffusive generator F_{a->b} maps a to a synthetic b~ = F(a) (Eq. 16); PatchGAN
  DC_b judges F's outputs against real b (non-saturating loss, Eq. 17);
* the diffusive generator G_{b->a} denoises x_{t+1} of a's chain conditioned on b~, giving
  x0_hat(a); D_a judges the posterior sample against the real x_t (Eq. 18);
* cycle terms: |F_{b->a}(F_{a->b}(a)) - a| and |x0_hat(a) - a| (Eq. 19), both weighted by
  lambda_l1.

One call updates D_mr and D_ct ("D"), DC_mr and DC_ct ("DC"), then all four generators
("G"), as the reference implementation does each iteration.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medxlate.models.nets.gan_losses import centre
from medxlate.models.syndiff.chain import Chain, schedule
from medxlate.models.syndiff.losses import d_fake_loss, d_real_loss, g_adv_loss

_OTHER = {"mr": "ct", "ct": "mr"}


def _gen(a: str, b: str) -> str:
    return f"{a}2{b}"


def unpaired_step(nets: dict[str, nn.Module], batch: dict[str, torch.Tensor], ctx,
                  config: dict[str, Any]) -> dict[str, float]:
    real = {"mr": centre(batch["mr"]), "ct": centre(batch["ct"])}
    sched = schedule(config)
    # chains[a]: generates contrast a from a condition of the other contrast.
    chains = {a: Chain(nets[f"G_{_gen(_OTHER[a], a)}"], nets[f"D_{a}"], sched, ctx, config)
              for a in real}
    lam = float(config["lambda_l1"])
    logs: dict[str, float] = {}

    # 1. Diffusive discriminators, conditions from the current F (no gradient to F or G).
    with torch.no_grad(), ctx.autocast():
        cond = {a: nets[f"F_{_gen(a, _OTHER[a])}"](real[a]) for a in real}
    for a, chain in chains.items():
        for key, value in chain.d_step(real[a], cond[a]).items():
            logs[f"{key}_{a}"] = value
    ctx.step("D")

    # 2. Non-diffusive PatchGAN discriminators: real b against F_{a->b}(a).
    loss_dc = torch.zeros(())
    with ctx.autocast():
        for a in real:
            b = _OTHER[a]
            dc = nets[f"DC_{b}"]
            loss_dc = loss_dc + d_real_loss(dc(real[b])) + d_fake_loss(dc(cond[a].detach()))
    ctx.backward(loss_dc)
    ctx.step("DC")
    logs["dc"] = float(loss_dc.detach())

    # 3. All generators at once.
    frozen = [nets[n] for n in nets if n.startswith("D")]
    for net in frozen:
        net.requires_grad_(False)
    try:
        with ctx.autocast():
            total = torch.zeros(())
            adv_f = cycle = adv_g = l1 = torch.zeros(())
            for a, x0 in real.items():
                b = _OTHER[a]
                synth_b = nets[f"F_{_gen(a, b)}"](x0)
                rebuilt = nets[f"F_{_gen(b, a)}"](synth_b)
                adv_f = adv_f + g_adv_loss(nets[f"DC_{b}"](synth_b))
                cycle = cycle + F.l1_loss(rebuilt.float(), x0.float())
                chain = chains[a]
                g_loss, g_logs = chain.g_loss(x0, synth_b)
                adv_g = adv_g + g_logs["g_adv"]
                l1 = l1 + g_logs["g_l1"]
                total = total + g_loss
            total = total + adv_f + lam * cycle
        ctx.backward(total)
    finally:
        for net in frozen:
            net.requires_grad_(True)
    ctx.step("G")
    logs.update({"g_adv": float(adv_g), "g_l1": float(l1), "f_adv": float(adv_f.detach()),
                 "cycle": float(cycle.detach()), "g": float(total.detach())})
    return logs
