"""The torch side of the conditional DDPM (see medxlate/models/family.py for the protocol)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medxlate.diffusion import GaussianDiffusion, make_betas, resolve_sampler
from medxlate.diffusion import noise as rng
from medxlate.diffusion.losses import data_bin_half_width
from medxlate.models.nets.unet import UNet


def diffusion_from(config: dict[str, Any]) -> GaussianDiffusion:
    """The training diffusion process of a config (pixels in [-1, 1]: x0 clipped)."""
    betas = make_betas(config["schedule"], int(config["diffusion_steps"]))
    return GaussianDiffusion(betas, mean_type=config["mean_type"], var_type=config["var_type"],
                             clip_x0=True)


def source_target(batch: dict[str, torch.Tensor], config: dict[str, Any]):
    """(source stack (B, 2k+1, H, W), target centre slice (B, 1, H, W)) for the direction."""
    k = int(config["context"])
    src, tgt = ("mr", "ct") if config["direction"] == "mri2ct" else ("ct", "mr")
    return batch[src], batch[tgt][:, k:k + 1]


class DDPMFamily:
    """Conditional DDPM: one U-Net named ``"unet"``."""

    def build(self, config: dict[str, Any]) -> dict[str, nn.Module]:
        size = int(config["slice_size"][0])
        attention_ds = [size // r for r in config["attention_resolutions"] if size % r == 0]
        learned = config["var_type"] == "learned_range"
        net = UNet(in_channels=1 + 2 * int(config["context"]) + 1,
                   out_channels=2 if learned else 1,
                   model_channels=int(config["model_channels"]),
                   channel_mult=tuple(config["channel_mult"]),
                   num_res_blocks=int(config["num_res_blocks"]), attention_ds=attention_ds,
                   dropout=float(config["dropout"]), head_channels=int(config["head_channels"]))
        return {"unet": net}

    def optimizers(self, nets: dict[str, nn.Module],
                   config: dict[str, Any]) -> dict[str, torch.optim.Optimizer]:
        return {"unet": torch.optim.AdamW(nets["unet"].parameters(), lr=float(config["lr"]),
                                          weight_decay=float(config["weight_decay"]))}

    def inference_nets(self, config: dict[str, Any]) -> list[str]:
        return ["unet"]

    @staticmethod
    def bin_width(config: dict[str, Any], normalisation: dict | None = None) -> float:
        """Half-width of a data bin in [-1, 1] units for the discretised likelihood (see
        :func:`medxlate.diffusion.losses.data_bin_half_width`); ``nll_bin_width`` in the config
        overrides it."""
        if config.get("nll_bin_width") is not None:
            return float(config["nll_bin_width"])
        return data_bin_half_width(config["direction"] == "mri2ct", normalisation)

    def training_step(self, nets, batch, ctx, config) -> dict[str, float]:
        unet = nets["unet"]
        diffusion = diffusion_from(config)
        source, target = source_target(batch, config)
        t = diffusion.sample_timesteps(target.shape[0], device=ctx.device,
                                       generator=ctx.generator)
        noise = torch.randn(target.shape, generator=ctx.generator, device=ctx.device)

        def model(x_t, t_model, cond):
            # The network runs under autocast; the diffusion maths stays in float32.
            with ctx.autocast():
                return unet(x_t, t_model, cond).float()

        terms = diffusion.training_losses(model, target, t, source, noise, loss=config["loss"],
                                          vlb_weight=float(config["vlb_weight"]),
                                          nll_bin_width=self.bin_width(
                                              config, getattr(ctx, "normalisation", None)))
        loss = terms["loss"].mean()
        ctx.backward(loss)
        ctx.step("unet")
        return {k: float(v.detach().mean()) for k, v in terms.items()}

    @torch.no_grad()
    def translate(self, nets, source: torch.Tensor, *, config: dict[str, Any], sampler: str,
                  steps: int | None, eta: float, generator: torch.Generator | None,
                  callback=None) -> torch.Tensor:
        unet = nets["unet"]
        fn, kwargs = resolve_sampler(sampler, steps, eta if eta else None)
        diffusion = diffusion_from(config)
        shape = (source.shape[0], 1, *source.shape[2:])
        x_T = rng.randn(shape, generator, device=source.device)
        was_training = unet.training
        unet.eval()
        try:
            x0 = fn(lambda x, t, cond: unet(x, t, cond).float(), x_T, diffusion,
                    cond=source.float(), generator=generator, callback=callback, **kwargs)
        finally:
            unet.train(was_training)
        return x0.clamp(-1.0, 1.0)


FAMILY = DDPMFamily()
