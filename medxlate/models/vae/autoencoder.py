"""A grey-scale slice autoencoder around diffusers' AutoencoderKL (the SD VAE layout).

Slices in [-1, 1], shape (B, 1, H, W), are replicated to the 3 channels an SD VAE expects;
decoded images are averaged back to 1 channel. The autoencoder always runs in float32, even
inside a bf16 autocast region, and latents are never clipped. Latents are scaled as in LDM:
``z = (mean or sample - shift_factor) * scaling_factor``; the scaling factor is a buffer, so
it travels in the checkpoint (a trained VAE keeps it at 1/std of its latents).

Example:
    >>> import torch
    >>> vae = LatentVAE(demo_arch())
    >>> z = vae.encode(torch.zeros(2, 1, 32, 32))
    >>> tuple(z.shape), tuple(vae.decode(z).shape)
    ((2, 4, 4, 4), (2, 1, 32, 32))
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

# The keys of an AutoencoderKL config that describe its architecture and latent scaling.
ARCH_KEYS = ("in_channels", "out_channels", "down_block_types", "up_block_types",
             "block_out_channels", "layers_per_block", "act_fn", "latent_channels",
             "norm_num_groups", "mid_block_add_attention", "use_quant_conv",
             "use_post_quant_conv", "scaling_factor", "shift_factor")


def arch_from_config(config: dict[str, Any], scaling_factor: float = 1.0) -> dict[str, Any]:
    """An AutoencoderKL architecture dict (SD layout defaults) from a model config's keys."""
    levels = len(config["block_out_channels"])
    return {"in_channels": 3, "out_channels": 3,
            "down_block_types": ["DownEncoderBlock2D"] * levels,
            "up_block_types": ["UpDecoderBlock2D"] * levels,
            "block_out_channels": list(config["block_out_channels"]),
            "layers_per_block": int(config["layers_per_block"]), "act_fn": "silu",
            "latent_channels": int(config["latent_channels"]),
            "norm_num_groups": int(config["norm_num_groups"]),
            "mid_block_add_attention": True, "use_quant_conv": True,
            "use_post_quant_conv": True, "scaling_factor": float(scaling_factor),
            "shift_factor": None}


def demo_arch() -> dict[str, Any]:
    """A tiny f=8 architecture (for doctests and tests)."""
    return arch_from_config({"block_out_channels": [8, 8, 16, 16], "layers_per_block": 1,
                             "latent_channels": 4, "norm_num_groups": 4})


def downsampling(arch: dict[str, Any]) -> int:
    """The spatial downsampling factor f of an architecture (2 per level after the first)."""
    return 2 ** (len(arch["block_out_channels"]) - 1)


class LatentVAE(nn.Module):
    """AutoencoderKL with grey-scale in/out and LDM latent scaling.

    Args:
        arch: an AutoencoderKL config (see :data:`ARCH_KEYS`).
    """

    def __init__(self, arch: dict[str, Any]) -> None:
        super().__init__()
        from medxlate.models.vae.libs import autoencoder_kl

        AutoencoderKL = autoencoder_kl()
        kwargs = {k: arch[k] for k in ARCH_KEYS if k in arch and k != "scaling_factor"}
        kwargs["down_block_types"] = tuple(kwargs["down_block_types"])
        kwargs["up_block_types"] = tuple(kwargs["up_block_types"])
        kwargs["block_out_channels"] = tuple(kwargs["block_out_channels"])
        self.ae = AutoencoderKL(**kwargs)
        self.shift_factor = float(arch.get("shift_factor") or 0.0)
        self.register_buffer("scaling_factor",
                             torch.tensor(float(arch.get("scaling_factor", 1.0))))
        self.factor = downsampling(arch)
        self.latent_channels = int(arch["latent_channels"])

    def _no_autocast(self, x: torch.Tensor):
        return torch.autocast(x.device.type, enabled=False)

    def posterior(self, x: torch.Tensor):
        """The diagonal Gaussian q(z | x) of grey slices (B, 1, H, W), unscaled, float32."""
        with self._no_autocast(x):
            return self.ae.encode(x.float().expand(-1, 3, -1, -1)).latent_dist

    def scale(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.shift_factor) * self.scaling_factor

    def unscale(self, z: torch.Tensor) -> torch.Tensor:
        return z / self.scaling_factor + self.shift_factor

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Scaled latents (B, 4, H/f, W/f): the posterior mean, or a sample with
        ``generator``. Never clipped."""
        dist = self.posterior(x)
        z = dist.mean if generator is None else dist.sample(generator=generator)
        return self.scale(z)

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """Decode unscaled latents to 3 channels, float32."""
        with self._no_autocast(z):
            return self.ae.decode(z.float()).sample

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Grey slices (B, 1, H, W) from scaled latents (mean of the 3 decoded channels)."""
        return self.decode_raw(self.unscale(z)).mean(dim=1, keepdim=True)
