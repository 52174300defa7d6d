"""ALDM's networks from a config: MONAI VQ-VAE, PatchDiscriminator, MS-SPADE, latent UNet.

MONAI's generative networks (monai.networks.nets) are the standard 3D parts; MS-SPADE is
ours (:mod:`.spade`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from medxlate.models.aldm.spade import SPADENet


def factor(config: dict[str, Any]) -> int:
    """The autoencoder's downsampling factor f (product of its strides)."""
    f = 1
    for s in config["vq_strides"]:
        f *= int(s)
    return f


def build_vqvae(config: dict[str, Any]) -> nn.Module:
    from monai.networks.nets import VQVAE

    strides = [int(s) for s in config["vq_strides"]]
    # Stride 2: kernel 4 (MONAI's default); stride 1: a 3x3x3 convolution.
    down = [(s, 4, 1, 1) if s == 2 else (1, 3, 1, 1) for s in strides]
    up = [(s, 4, 1, 1, 0) if s == 2 else (1, 3, 1, 1, 0) for s in reversed(strides)]
    return VQVAE(spatial_dims=3, in_channels=1, out_channels=1,
                 channels=tuple(int(c) for c in config["vq_channels"]),
                 num_res_layers=int(config["vq_res_layers"]),
                 num_res_channels=tuple(int(c) for c in config["vq_channels"]),
                 downsample_parameters=down, upsample_parameters=up,
                 num_embeddings=int(config["num_embeddings"]),
                 embedding_dim=int(config["embedding_dim"]),
                 commitment_cost=float(config["commitment_cost"]),
                 decay=float(config["codebook_decay"]),
                 use_checkpointing=bool(config["grad_checkpointing"]))


def build_discriminator(config: dict[str, Any]) -> nn.Module:
    from monai.networks.nets import PatchDiscriminator

    return PatchDiscriminator(spatial_dims=3, channels=int(config["disc_channels"]),
                              in_channels=1, out_channels=1,
                              num_layers_d=int(config["disc_layers"]), norm="INSTANCE")


def build_spade(config: dict[str, Any]) -> nn.Module:
    return SPADENet(int(config["embedding_dim"]), len(config["targets"]),
                    config["spade_channels"], int(config["spade_hidden"]))


def unet_inputs(config: dict[str, Any]) -> int:
    """Input channels of the latent UNet: z_t plus the concatenated conditions."""
    per = {"src_tar": 1, "src+src_tar": 2}[config["ldm_concat"]]
    return int(config["embedding_dim"]) * (1 + per)


def build_unet(config: dict[str, Any]) -> nn.Module:
    """DiffusionModelUNet on concat(z_t, condition latents), target by cross-attention on
    the one-hot target (Eq. 3) or, as the public code, a class embedding."""
    from monai.networks.nets import DiffusionModelUNet

    n_targets = len(config["targets"])
    crossattn = config["conditioning"] == "crossattn"
    net = DiffusionModelUNet(
        spatial_dims=3, in_channels=unet_inputs(config),
        out_channels=int(config["embedding_dim"]),
        channels=tuple(int(c) for c in config["unet_channels"]),
        attention_levels=tuple(bool(a) for a in config["unet_attention"]),
        num_res_blocks=int(config["unet_res_blocks"]),
        num_head_channels=int(config["unet_head_channels"]),
        norm_num_groups=int(config["unet_groups"]),
        with_conditioning=crossattn, cross_attention_dim=n_targets if crossattn else None,
        num_class_embeds=None if crossattn else n_targets)
    if config["grad_checkpointing"]:
        checkpoint_blocks(net)
    return net


def checkpoint_blocks(net: nn.Module) -> None:
    """Recompute each down/middle/up block's activations in the backward pass (training
    only), trading compute for memory; the state dict is unchanged."""
    blocks = [*net.down_blocks, net.middle_block, *net.up_blocks]
    for block in blocks:
        plain = block.forward

        def forward(*args, _plain=plain, _block=block, **kwargs):
            if _block.training and torch.is_grad_enabled():
                return checkpoint(_plain, *args, use_reentrant=False, **kwargs)
            return _plain(*args, **kwargs)

        block.forward = forward


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
