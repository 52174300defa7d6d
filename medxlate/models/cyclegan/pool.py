"""The image history buffer of CycleGAN (Shrivastava et al. 2017; Zhu et al. 2017, sec. 4).

The discriminator is shown, for each generated image, either that image (while the pool
fills, and half of the time afterwards) or one drawn from the last ``size`` generated images,
which is then replaced by the new one. This damps oscillation between G and D.
"""

from __future__ import annotations

import torch


class ImagePool:
    """A buffer of up to ``size`` past generated images (``size = 0`` passes through)."""

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor, generator: torch.Generator | None = None
              ) -> torch.Tensor:
        """Return a batch the same size as ``images`` mixing new and remembered ones."""
        images = images.detach()
        if self.size <= 0:
            return images
        device = generator.device if generator is not None else torch.device("cpu")
        out = []
        for image in images:
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
                continue
            coin, pick = torch.rand(2, generator=generator, device=device).tolist()
            if coin < 0.5:
                out.append(image)
                continue
            index = min(int(pick * self.size), self.size - 1)
            out.append(self.images[index].clone())
            self.images[index] = image.clone()
        return torch.cat(out, 0)
