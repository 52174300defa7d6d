"""A ControlNet on Canny contours for CT<->MR (Zhang et al., ICCV 2023), as in Mediffuse.

The seed conditions Stable Diffusion on the CT's Canny edge map to draw an MR (CT->MR);
MR->CT from the MR's contours is the option. Training sees the dataset's contour maps of
the source slice (``ct_edges``/``mr_edges``, made by preprocess); synthesis recomputes
them from the source slice with the same Canny parameters (``canny``, preprocess's
defaults). The edge map goes in as a 3-channel image in [0, 1]. The SD U-Net stays frozen
(paper) unless ``train_unet`` (the demo, trained from scratch, has nothing to freeze);
50% of the prompts are replaced by the empty prompt in training (Zhang et al., Sec. 3.3),
which makes the classifier-free guidance of sampling meaningful.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from medxlate.models.mediffuse.common import (
    SOURCE_TARGET,
    adam,
    ddim_sample,
    decode,
    eval_mode,
    noised,
    prompt_states,
    source_target,
    step_denoiser,
    training_prompts,
    translations,
    vae_step,
)
from medxlate.models.mediffuse.guidance import cfg_guidance
from medxlate.models.mediffuse.libs import sd
from medxlate.models.mediffuse.nets import (
    build_parts,
    pretrained_folder,
    read_controlnet_folder,
    read_sd_folder,
)

INFERENCE_OPTIONS = ("guidance", "negative_prompt", "inference_steps")


def control_from_unet(unet: nn.Module, config: dict[str, Any]) -> nn.Module:
    """A ControlNet whose encoder copies ``unet``'s (Zhang et al.: the trainable copy)."""
    ctrl = config["control"]
    return sd().ControlNetModel.from_unet(
        unet, conditioning_embedding_out_channels=tuple(ctrl["conditioning_embedding_out_channels"]),
        conditioning_channels=int(ctrl["conditioning_channels"]))


def edge_maps(source: torch.Tensor, config: dict[str, Any]) -> torch.Tensor:
    """Canny maps (B, 1, H, W) in {0, 1} of network-space slices, as preprocess makes them."""
    from medxlate.preprocess.contours import contour_maps

    planes = source[:, 0].detach().float().cpu().numpy()
    edges = contour_maps(planes, config["canny"]).astype(np.float32)
    return torch.from_numpy(edges)[:, None].to(source.device)


class ControlNetFamily:
    """The mediffuse-controlnet :class:`~medxlate.models.family.Family`."""

    inference_options = INFERENCE_OPTIONS

    def build(self, config: dict[str, Any]) -> dict[str, nn.Module]:
        parts = build_parts(config, unet_in=int(config["vae"]["latent_channels"]))
        parts["controlnet"] = control_from_unet(parts["unet"], config)
        return parts

    def inference_nets(self, config: dict[str, Any]) -> list[str]:
        return ["unet", "vae", "text_encoder", "tokenizer", "controlnet"]

    def pretrained(self, config: dict[str, Any]):
        """The engine's hook, once when a run starts. ``pretrained`` (a local SD 1.5 folder)
        gives the U-Net, autoencoder, text encoder and tokenizer, and the ControlNet starts
        as a copy of that U-Net's encoder (Zhang et al.); ``controlnet`` (a local
        diffusers-format ControlNet) replaces that copy. Layouts go into the config."""
        updates: dict[str, Any] = {}
        states: dict[str, dict] = {}
        sd_path = pretrained_folder(config)
        if sd_path is not None:
            updates, states = read_sd_folder(sd_path, int(config["vae"]["latent_channels"]))
        ctrl_path = pretrained_folder(config, "controlnet")
        if ctrl_path is not None:
            updates["control"], states["controlnet"] = read_controlnet_folder(ctrl_path)
        elif sd_path is not None:
            unet = sd().UNet2DConditionModel(**updates["unet"])
            unet.load_state_dict(states["unet"])
            states["controlnet"] = control_from_unet(unet, config).state_dict()
        return updates, states

    def optimizers(self, nets, config) -> dict[str, torch.optim.Optimizer]:
        """AdamW on the ControlNet (and on the U-Net/autoencoder only when they train from
        scratch: ``train_unet``/``train_vae``); the text encoder stays frozen."""
        nets["text_encoder"].requires_grad_(False)
        nets["vae"].requires_grad_(bool(config.get("train_vae")))
        nets["unet"].requires_grad_(bool(config.get("train_unet")))
        if config.get("gradient_checkpointing"):
            nets["controlnet"].enable_gradient_checkpointing()
            nets["unet"].enable_gradient_checkpointing()
        opts = {"controlnet": adam(nets["controlnet"].parameters(), config)}
        if config.get("train_unet"):
            opts["unet"] = adam(nets["unet"].parameters(), config)
        if config.get("train_vae"):
            opts["vae"] = adam(nets["vae"].parameters(), config, "vae_lr")
        return opts

    def translations(self, config: dict[str, Any]):
        return translations(config)

    def source_edges(self, batch, source, flip, config) -> torch.Tensor:
        """The dataset's contours of each example's source slice (computed when absent)."""
        src, tgt = SOURCE_TARGET[config["direction"]]
        if f"{src}_edges" not in batch or (bool(flip.any()) and f"{tgt}_edges" not in batch):
            return edge_maps(source, config)
        edges = batch[f"{src}_edges"][:, :1].float()
        if bool(flip.any()):
            edges = torch.where(flip[:, None, None, None], batch[f"{tgt}_edges"][:, :1].float(),
                                edges)
        return edges

    def denoise(self, nets, zt, t, text, control) -> torch.Tensor:
        down, mid = nets["controlnet"](zt, t, encoder_hidden_states=text,
                                       controlnet_cond=control, return_dict=False)
        return nets["unet"](zt, t, text, down_block_additional_residuals=down,
                            mid_block_additional_residual=mid).sample

    def training_step(self, nets, batch, ctx, config) -> dict[str, float]:
        source, target, flip = source_target(batch, config, ctx.generator)
        b = source.shape[0]
        control = self.source_edges(batch, source, flip, config).expand(-1, 3, -1, -1)
        z0, vae_loss = vae_step(nets["vae"], target, config, ctx)
        u = torch.rand(b, generator=ctx.generator, device=ctx.device)
        drop = u < float(config["text_dropout"])
        c_text = training_prompts(nets, config["prompt"], flip, drop, config, ctx.device)
        zt, t, goal = noised(z0, config, ctx.generator)
        with ctx.autocast():
            pred = self.denoise(nets, zt, t, c_text, control)
        return step_denoiser(ctx, pred, goal, vae_loss,
                             ["controlnet"] + (["unet"] if config.get("train_unet") else []))

    @torch.no_grad()
    def translate(self, nets, source: torch.Tensor, *, config: dict[str, Any],
                  sampler: str = "ddim", steps: int | None = None, eta: float = 0.0,
                  generator: torch.Generator | None = None, callback=None) -> torch.Tensor:
        """DDIM with classifier-free guidance ``guidance`` against ``negative_prompt``;
        the control image (the source's Canny map) enters both branches."""
        w = float(config["guidance"])
        source = source[:, :1].float()
        b, (h, wd) = source.shape[0], source.shape[2:]
        control = edge_maps(source, config).expand(-1, 3, -1, -1)
        with eval_mode(nets):
            text = prompt_states(nets, [config["prompt"][config["direction"]],
                                        config.get("negative_prompt") or ""], config,
                                 source.device)
            cond, neg = text[0:1].expand(b, -1, -1), text[1:2].expand(b, -1, -1)

            def predict(z, t):
                if w == 1.0:
                    return self.denoise(nets, z, t, cond, control)
                out = self.denoise(nets, torch.cat([z, z]), t, torch.cat([cond, neg]),
                                   torch.cat([control, control])).float()
                e_cond, e_neg = out.chunk(2)
                return cfg_guidance(e_neg, e_cond, w)

            factor = 2 ** (len(config["vae"]["block_out_channels"]) - 1)
            shape = (b, int(config["vae"]["latent_channels"]), h // factor, wd // factor)
            z = ddim_sample(predict, shape, config, steps, eta, generator, source.device,
                            callback)
            return decode(nets["vae"], z, config)


FAMILY = ControlNetFamily()
