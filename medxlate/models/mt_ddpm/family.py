"""The torch side of MT-DDPM (see medxlate/models/family.py for the protocol).

The diffusion maths is medxlate.diffusion's (learned-range variance, hybrid loss, respacing,
samplers); this module supplies the Swin-transformer U-Net, the paper's gamma and its
sampling defaults (respaced 500 of 4000 steps, x0 clipped to [-1, 1]).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medxlate.diffusion import GaussianDiffusion, make_betas, resolve_sampler
from medxlate.diffusion import noise as rng
from medxlate.models.mt_ddpm.network import MTDDPMNet

NO_SOURCE = "none"


def translation(config: dict[str, Any]) -> tuple[str, str]:
    """(source, target) tags of a config: its ``source``/``target``, else its direction;
    an unconditional config (``pairing: unconditional``) has source "none"."""
    if config.get("source") and config.get("target"):
        pair = (str(config["source"]), str(config["target"]))
    else:
        pair = ("mr", "ct") if config.get("direction", "mri2ct") == "mri2ct" else ("ct", "mr")
    if config.get("pairing") == "unconditional":
        pair = (NO_SOURCE, pair[1])
    return pair


def batch_key(tag: str) -> str:
    """The batch/shard key of a modality tag ("ct" or "mr" for every MR contrast)."""
    return "ct" if tag == "ct" else "mr"


def is_unconditional(config: dict[str, Any]) -> bool:
    return translation(config)[0] == NO_SOURCE


def diffusion_from(config: dict[str, Any]) -> GaussianDiffusion:
    """The training process: T = ``diffusion_steps`` of ``schedule``, x0 clipped to [-1, 1]."""
    betas = make_betas(config["schedule"], int(config["diffusion_steps"]))
    return GaussianDiffusion(betas, mean_type=config["mean_type"], var_type=config["var_type"],
                             clip_x0=True)


class MTDDPMFamily:
    """MT-DDPM: one network named ``"net"``."""

    def build(self, config: dict[str, Any]) -> dict[str, nn.Module]:
        size = int(config["slice_size"][0])
        source_channels = 0 if is_unconditional(config) else 1 + 2 * int(config["context"])
        learned = config["var_type"] == "learned_range"
        net = MTDDPMNet(in_channels=1 + source_channels, out_channels=2 if learned else 1,
                        size=size, channels=int(config["model_channels"]),
                        channel_mult=tuple(config["channel_mult"]),
                        head_channels=int(config["head_channels"]),
                        window=int(config["window"]), res_blocks=int(config["res_blocks"]),
                        dropout=float(config["dropout"]), mlp_ratio=float(config["mlp_ratio"]))
        return {"net": net}

    def optimizers(self, nets, config) -> dict[str, torch.optim.Optimizer]:
        return {"net": torch.optim.AdamW(nets["net"].parameters(), lr=float(config["lr"]),
                                         weight_decay=float(config["weight_decay"]))}

    def inference_nets(self, config: dict[str, Any]) -> list[str]:
        return ["net"]

    @staticmethod
    def bin_width(config: dict[str, Any], normalisation: dict | None = None) -> float:
        """Half-width of the decoder's data bins in [-1, 1] units (the L_0 term): one HU of
        the dataset's CT window for CT targets (see ``data_bin_half_width``)."""
        from medxlate.diffusion.losses import data_bin_half_width

        if config.get("nll_bin_width") is not None:
            return float(config["nll_bin_width"])
        return data_bin_half_width(translation(config)[1] == "ct", normalisation)

    def losses(self, net: nn.Module, batch: dict[str, torch.Tensor], config: dict[str, Any],
               generator: torch.Generator | None, autocast=None,
               normalisation: dict | None = None) -> dict[str, torch.Tensor]:
        """Per-sample loss terms (B,): "mse" (L_mean), "vb" (L_t, bits/dim) and "loss" =
        L_mean + gamma * T * L_t, the VLB term computed with the mean detached (Pan et al.
        2023 Eq. 24; improved-diffusion's hybrid objective with lambda = gamma)."""
        diffusion = diffusion_from(config)
        k = int(config["context"])
        src, tgt = translation(config)
        target = batch[batch_key(tgt)][:, k:k + 1]
        source = None if src == NO_SOURCE else batch[batch_key(src)]
        t = diffusion.sample_timesteps(target.shape[0], device=target.device, generator=generator)
        noise = torch.randn(target.shape, generator=generator, device=target.device)

        def model(x_t, t_model, cond):
            if autocast is None:
                return net(x_t, t_model, cond).float()
            with autocast():
                return net(x_t, t_model, cond).float()

        return diffusion.training_losses(model, target, t, source, noise, loss=config["loss"],
                                         vlb_weight=float(config["gamma"]),
                                         nll_bin_width=self.bin_width(config, normalisation))

    def training_step(self, nets, batch, ctx, config) -> dict[str, float]:
        terms = self.losses(nets["net"], batch, config, ctx.generator, ctx.autocast,
                            getattr(ctx, "normalisation", None))
        ctx.backward(terms["loss"].mean())
        ctx.step("net")
        return {k: float(v.detach().mean()) for k, v in terms.items()}

    @staticmethod
    def sampler_kwargs(config: dict[str, Any], sampler: str, steps: int | None,
                       eta: float) -> tuple[Any, dict]:
        """The sampler and its arguments; ``respaced`` without --steps runs the config's
        ``sampling_steps`` (500 of 4000, the paper's) instead of the generic 250."""
        if sampler == "respaced" and steps is None:
            steps = int(config["sampling_steps"])
        return resolve_sampler(sampler, steps, eta if eta else None)

    @torch.no_grad()
    def generate(self, nets, count: int, *, config: dict[str, Any], sampler: str,
                 steps: int | None, eta: float, generator: torch.Generator | None,
                 device=None, callback=None, cond: torch.Tensor | None = None,
                 size: tuple[int, int] | None = None) -> torch.Tensor:
        """``count`` target slices (count, 1, H, W) in [-1, 1] from noise, conditioned on
        ``cond`` when given; H, W are cond's, else ``size``, else the config's slice size."""
        net = nets["net"]
        fn, kwargs = self.sampler_kwargs(config, sampler, steps, eta)
        device = device if device is not None else next(net.parameters()).device
        h, w = (cond.shape[-2:] if cond is not None else size or config["slice_size"])
        x_T = rng.randn((count, 1, int(h), int(w)), generator, device=device)
        was_training = net.training
        net.eval()
        try:
            x0 = fn(lambda x, t, c: net(x, t, c).float(), x_T, diffusion_from(config),
                    cond=None if cond is None else cond.float(), generator=generator,
                    callback=callback, **kwargs)
        finally:
            net.train(was_training)
        # The paper clips generated intensities to [-1, 1] at inference.
        return x0.clamp(-1.0, 1.0)

    def translate(self, nets, source: torch.Tensor, *, config: dict[str, Any], sampler: str,
                  steps: int | None, eta: float, generator: torch.Generator | None,
                  callback=None) -> torch.Tensor:
        """Conditional translation; an unconditional checkpoint draws one slice per source
        slice and ignores its content (`medxlate generate` is the way to use those)."""
        cond = None if is_unconditional(config) else source
        return self.generate(nets, source.shape[0], config=config, sampler=sampler, steps=steps,
                             eta=eta, generator=generator, device=source.device,
                             callback=callback, cond=cond, size=tuple(source.shape[-2:]))

    def translations(self, config: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        """The one translation a checkpoint learned (for synthesize's checks)."""
        return (translation(config),)


FAMILY = MTDDPMFamily()
