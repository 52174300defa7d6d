"""Importing diffusers and transformers offline, and only when a mediffuse model is built.

Nothing is ever fetched from a hub: the offline switches of huggingface_hub, transformers
and diffusers are set before the first import, so a missing local file is an error rather
than a download. A torchvision that is installed but cannot load (for instance a CUDA
build of torchvision beside a CPU build of torch) is hidden from both libraries, which use
it only for image processors that the text encoder and the U-Nets never need.
"""

from __future__ import annotations

import os
from functools import lru_cache
from types import SimpleNamespace

# One definition of the offline switches and of the broken-torchvision guard, shared with
# the latent models' autoencoder import.
from medxlate.models.vae.libs import OFFLINE_SWITCHES, hide_broken_torchvision


def set_offline() -> None:
    """Set the libraries' offline switches (kept if the user set them already)."""
    for key, value in OFFLINE_SWITCHES.items():
        os.environ.setdefault(key, value)


@lru_cache(maxsize=1)
def sd() -> SimpleNamespace:
    """The diffusers and transformers classes mediffuse uses, imported offline."""
    set_offline()
    hide_broken_torchvision()
    import diffusers
    import transformers
    from diffusers import (
        AutoencoderKL,
        ControlNetModel,
        DDIMScheduler,
        DDPMScheduler,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()
    return SimpleNamespace(UNet2DConditionModel=UNet2DConditionModel,
                           ControlNetModel=ControlNetModel, AutoencoderKL=AutoencoderKL,
                           DDIMScheduler=DDIMScheduler, DDPMScheduler=DDPMScheduler,
                           CLIPTextConfig=CLIPTextConfig, CLIPTextModel=CLIPTextModel,
                           CLIPTokenizer=CLIPTokenizer)
