"""FIR [1, 3, 3, 1] resampling (StyleGAN2; used by NCSN++ and SynDiff) as cheap depthwise ops.

The separable filter ``k = [1, 3, 3, 1] / 8`` (sum 1) gives, along each axis:

* downsampling by 2: ``y[m] = (x[2m-1] + 3 x[2m] + 3 x[2m+1] + x[2m+2]) / 8``;
* upsampling by 2 (gain 4 in 2D, i.e. 2 per axis): ``y[2m] = (x[m-1] + 3 x[m]) / 4`` and
  ``y[2m+1] = (3 x[m] + x[m+1]) / 4``;

with zeros outside the image, exactly as ``upfirdn2d`` with the paddings of
``downsample_2d``/``upsample_2d`` in the reference code (Karras et al. 2020). Here both are
one depthwise (transposed) convolution with a stride of 2, so nothing is computed at
positions the stride then discards.

Example:
    >>> import torch
    >>> fir_down(torch.ones(1, 1, 4, 4))[0, 0]  # (7/8)^2: one zero tap outside the image
    tensor([[0.7656, 0.7656],
            [0.7656, 0.7656]])
    >>> fir_up(torch.ones(1, 1, 2, 2)).shape
    torch.Size([1, 1, 4, 4])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FIR_TAPS = (1.0, 3.0, 3.0, 1.0)

_kernels: dict[tuple, torch.Tensor] = {}


def _kernel(channels: int, scale: float, like: torch.Tensor) -> torch.Tensor:
    """Depthwise 4x4 kernel (channels, 1, 4, 4): outer(k, k) / sum * scale."""
    key = (channels, scale, like.dtype, like.device)
    k = _kernels.get(key)
    if k is None:
        # Built outside inference mode even when first asked for inside it: a cached
        # inference tensor could never be saved for backward by a later training step.
        with torch.inference_mode(False):
            taps = torch.tensor(FIR_TAPS, dtype=torch.float64)
            k2 = torch.outer(taps, taps)
            k2 = (k2 / k2.sum() * scale).to(dtype=like.dtype, device=like.device)
            k = k2.expand(channels, 1, 4, 4).contiguous()
        _kernels[key] = k
    return k


def fir_down(x: torch.Tensor) -> torch.Tensor:
    """Blur with [1,3,3,1] and keep every second pixel: (B, C, H, W) -> (B, C, H/2, W/2)."""
    c = x.shape[1]
    return F.conv2d(x, _kernel(c, 1.0, x), stride=2, padding=1, groups=c)


def fir_up(x: torch.Tensor) -> torch.Tensor:
    """Zero-insert by 2 and blur with [1,3,3,1] (gain 4): (B, C, H, W) -> (B, C, 2H, 2W)."""
    c = x.shape[1]
    return F.conv_transpose2d(x, _kernel(c, 4.0, x), stride=2, padding=1, groups=c)


def fir_blur_pad2(x: torch.Tensor) -> torch.Tensor:
    """The [1,3,3,1] blur with 2 zero pixels of padding on every side: H -> H + 1.

    This is the pre-filter of the FIR "conv then downsample" layer (``conv_downsample_2d``):
    a following 3x3 convolution of stride 2 without padding halves the size.
    """
    c = x.shape[1]
    return F.conv2d(x, _kernel(c, 1.0, x), padding=2, groups=c)
