"""Small pieces shared by the GAN networks: normalisation choice and weight init.

The pix2pix/CycleGAN papers (Isola et al. 2017, Zhu et al. 2017) initialise every
convolution from N(0, 0.02) and the affine norm scales from N(1, 0.02).
"""

from __future__ import annotations

from torch import nn

NORMS = ("instance", "batch", "none")


def make_norm(kind: str, channels: int) -> nn.Module:
    """A 2D normalisation layer by name.

    Args:
        kind: "instance" (no affine, no running stats, as in CycleGAN), "batch" or "none".
        channels: number of feature channels.

    Returns:
        The layer (``nn.Identity`` for "none").
    """
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose from {', '.join(NORMS)}")


def conv_bias(kind: str) -> bool:
    """Convolutions before a batch norm need no bias (the norm's shift replaces it)."""
    return kind != "batch"


def init_gan_weights(module: nn.Module, std: float = 0.02) -> None:
    """Initialise convolutions ~ N(0, std), biases 0, batch-norm scales ~ N(1, std)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
