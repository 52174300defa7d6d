"""ALDM's optional perceptual term for the VQ-GAN, from a local Inception-v3 file.

VQ-GANs add a perceptual distance to the reconstruction loss; taming-transformers (which ALDM's
autoencoder follows) uses LPIPS, whose VGG and learned linear weights would have to be
downloaded. medxlate never downloads weights, so its perceptual term is built on a network a
user of `medxlate evaluate --distribution` already has locally: the FID Inception-v3
(pytorch-fid / torch-fidelity layout, ``--set perceptual=PATH``). It is LPIPS's distance
without the learned per-channel weights (Zhang et al. 2018, Eq. 1 with w = 1): features of
three early stages (Conv2d_2b, Conv2d_4a, Mixed_5d), each unit-normalised over channels,
squared differences summed over channels, averaged over positions and stages. Volumes are
handled "2.5D" as MONAI's PerceptualLoss does for 3D: a random fraction of the axial, coronal
and sagittal slices of prediction and reference go through the 2D network.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from medxlate.evaluate.inception import InceptionStem, load_into, read_state

#: The smallest side Inception-v3's stem accepts (its stride-2 convolutions and pools).
MIN_SIDE = 75
LABEL = "perceptual="


class InceptionFeatures(InceptionStem):
    """Inception-v3 up to Mixed_5d (the FID network's first stages); returns the feature
    maps of Conv2d_2b, Conv2d_4a and Mixed_5d."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Grey or RGB images (B, 1|3, H, W) in [-1, 1], H, W >= 75."""
        return self.stages(x.expand(-1, 3, -1, -1))


def load_features(path: Path | str) -> dict[str, torch.Tensor]:
    """The state of :class:`InceptionFeatures` from a full Inception-v3 weights file."""
    net = InceptionFeatures()
    load_into(net, read_state(path, LABEL), path, LABEL)
    return net.state_dict()


def normalised_distance(fa: torch.Tensor, fb: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Per image: mean over positions of sum_c (fa/|fa| - fb/|fb|)^2, norms over channels."""
    na = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + eps)
    nb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + eps)
    return (na - nb).pow(2).sum(1).mean(dim=(1, 2))


def slices_25d(x: torch.Tensor, fraction: float, generator: torch.Generator | None
               ) -> list[torch.Tensor]:
    """Index tensors of the slices drawn along each of the three axes of (B, 1, D, H, W)."""
    picks = []
    for n in x.shape[2:]:
        k = max(1, math.ceil(fraction * n))
        device = generator.device if generator is not None else "cpu"
        picks.append(torch.randperm(n, generator=generator, device=device)[:k].sort().values)
    return picks


def to_images(x: torch.Tensor, axis: int, index: torch.Tensor) -> torch.Tensor:
    """Slices ``index`` along spatial ``axis`` (0, 1, 2) of (B, 1, D, H, W) as (N, 1, h, w),
    bilinearly enlarged so that both sides are at least :data:`MIN_SIDE`."""
    dim = 2 + axis
    s = x.index_select(dim, index.to(x.device)).movedim(dim, 1)        # (B, k, 1, h, w)
    s = s.reshape(-1, 1, *s.shape[3:])
    h, w = s.shape[2:]
    scale = max(1.0, MIN_SIDE / min(h, w))
    if scale > 1.0:
        s = F.interpolate(s, size=(math.ceil(h * scale), math.ceil(w * scale)),
                          mode="bilinear", align_corners=False)
    return s


def perceptual_25d(net: InceptionFeatures, pred: torch.Tensor, ref: torch.Tensor,
                   fraction: float, generator: torch.Generator | None) -> torch.Tensor:
    """The perceptual distance of two volume batches (B, 1, D, H, W) in [-1, 1]: the mean of
    :func:`normalised_distance` over the three stages and the drawn slices of all axes."""
    terms = []
    for axis, index in enumerate(slices_25d(pred, fraction, generator)):
        fp = net(to_images(pred, axis, index))
        with torch.no_grad():
            fr = net(to_images(ref, axis, index))
        terms.append(torch.stack([normalised_distance(a, b).mean() for a, b in zip(fp, fr)])
                     .mean())
    return torch.stack(terms).mean()
