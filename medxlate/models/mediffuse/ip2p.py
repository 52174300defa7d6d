"""InstructPix2Pix for MR<->CT (Brooks et al., CVPR 2023), as the Mediffuse seed used it.

A Stable Diffusion U-Net with 8 input channels denoises the target slice's latent z_t
concatenated with the source slice's latent c_I, cross-attending to the CLIP states of a
text instruction c_T ("translate MRI scan image to CT scan image"). Training drops c_T
and/or c_I (zero latent, empty prompt) for 5% of examples each (Sec. 3.2.1) so that
sampling can use the paper's dual classifier-free guidance (Eq. 3, guidance.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medxlate.models.mediffuse.common import (
    adam,
    ddim_sample,
    decode,
    eval_mode,
    image_latents,
    noised,
    prompt_states,
    source_target,
    step_denoiser,
    training_prompts,
    translations,
    vae_step,
)
from medxlate.models.mediffuse.guidance import ip2p_dropout_masks, ip2p_guidance
from medxlate.models.mediffuse.nets import build_parts, pretrained_folder, read_sd_folder

INFERENCE_OPTIONS = ("image_guidance", "text_guidance", "inference_steps")


class InstructPix2Pix:
    """The mediffuse-ip2p :class:`~medxlate.models.family.Family`."""

    inference_options = INFERENCE_OPTIONS

    def build(self, config: dict[str, Any]) -> dict[str, nn.Module]:
        latent = int(config["vae"]["latent_channels"])
        return build_parts(config, unet_in=2 * latent)

    def inference_nets(self, config: dict[str, Any]) -> list[str]:
        return ["unet", "vae", "text_encoder", "tokenizer"]

    def pretrained(self, config: dict[str, Any]):
        """The engine's hook, once when a run starts: a local SD 1.5 folder (``pretrained``)
        gives the layouts (recorded in the config) and the weights; none: from scratch."""
        path = pretrained_folder(config)
        if path is None:
            return {}, {}
        return read_sd_folder(path, 2 * int(config["vae"]["latent_channels"]))

    def optimizers(self, nets, config) -> dict[str, torch.optim.Optimizer]:
        """AdamW on the U-Net (and the autoencoder when it trains from scratch); the text
        encoder stays frozen, as in InstructPix2Pix."""
        nets["text_encoder"].requires_grad_(False)
        nets["vae"].requires_grad_(bool(config.get("train_vae")))
        if config.get("gradient_checkpointing"):
            nets["unet"].enable_gradient_checkpointing()
        opts = {"unet": adam(nets["unet"].parameters(), config)}
        if config.get("train_vae"):
            opts["vae"] = adam(nets["vae"].parameters(), config, "vae_lr")
        return opts

    def instruction(self, config: dict[str, Any]) -> str:
        return config["instruction"][config["direction"]]

    def translations(self, config: dict[str, Any]):
        return translations(config)

    def training_step(self, nets, batch, ctx, config) -> dict[str, float]:
        source, target, flip = source_target(batch, config, ctx.generator)
        b = source.shape[0]
        z0, vae_loss = vae_step(nets["vae"], target, config, ctx)
        with torch.no_grad(), ctx.autocast():
            c_image = image_latents(nets["vae"], source).float()
        u = torch.rand(b, generator=ctx.generator, device=ctx.device)
        drop_text, drop_image = ip2p_dropout_masks(u, float(config["conditioning_dropout"]))
        c_text = training_prompts(nets, config["instruction"], flip, drop_text, config,
                                  ctx.device)
        c_image = c_image * (~drop_image).float()[:, None, None, None]
        zt, t, goal = noised(z0, config, ctx.generator)
        with ctx.autocast():
            pred = nets["unet"](torch.cat([zt, c_image], 1), t, c_text).sample
        return step_denoiser(ctx, pred, goal, vae_loss, ["unet"])

    @torch.no_grad()
    def translate(self, nets, source: torch.Tensor, *, config: dict[str, Any],
                  sampler: str = "ddim", steps: int | None = None, eta: float = 0.0,
                  generator: torch.Generator | None = None, callback=None) -> torch.Tensor:
        """DDIM with the dual guidance of Eq. 3 (image scale ``image_guidance``, text scale
        ``text_guidance``); s_I = s_T = 1 needs one U-Net pass per step, otherwise three
        (batched)."""
        s_image, s_text = float(config["image_guidance"]), float(config["text_guidance"])
        with eval_mode(nets):
            source = source[:, :1].float()
            c_image = image_latents(nets["vae"], source).float()
            text = prompt_states(nets, [self.instruction(config), ""], config, source.device)
            b = source.shape[0]
            full, null = text[0:1].expand(b, -1, -1), text[1:2].expand(b, -1, -1)
            unet = nets["unet"]
            plain = s_image == 1.0 and s_text == 1.0

            def predict(z, t):
                if plain:
                    return unet(torch.cat([z, c_image], 1), t, full).sample
                # The three branches of Eq. 3: (c_I, c_T), (c_I, 0), (0, 0).
                z3 = torch.cat([z, z, z])
                img3 = torch.cat([c_image, c_image, torch.zeros_like(c_image)])
                out = unet(torch.cat([z3, img3], 1), t, torch.cat([full, null, null])).sample
                e_full, e_image, e_uncond = out.float().chunk(3)
                return ip2p_guidance(e_uncond, e_image, e_full, s_image, s_text)

            shape = (b, c_image.shape[1], *c_image.shape[2:])
            z = ddim_sample(predict, shape, config, steps, eta, generator, source.device,
                            callback)
            return decode(nets["vae"], z, config)


FAMILY = InstructPix2Pix()
