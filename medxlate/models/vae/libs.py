"""diffusers' AutoencoderKL, imported offline and only when a latent model is built.

The hub's offline switches are set before the first import (a missing local file is then an
error, never a download). A torchvision that is installed but cannot load (a CUDA build of
torchvision beside a CPU build of torch) is hidden from diffusers/transformers, which import
it only for image processors the autoencoder never uses. medxlate.models.mediffuse.libs uses
the same switches and guard.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache

OFFLINE_SWITCHES = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                    "DIFFUSERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def hide_broken_torchvision() -> None:
    """Make an unloadable torchvision look absent (``find_spec`` then returns None)."""
    if "torchvision" in sys.modules:
        return
    try:
        import torchvision  # noqa: F401
    except ImportError:
        return
    except Exception:  # noqa: BLE001 - a binary mismatch raises RuntimeError/OSError
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules["torchvision"] = None  # type: ignore[assignment]


@lru_cache(maxsize=1)
def autoencoder_kl():
    """diffusers.AutoencoderKL (offline)."""
    for key, value in OFFLINE_SWITCHES.items():
        os.environ.setdefault(key, value)
    hide_broken_torchvision()
    import diffusers
    from diffusers import AutoencoderKL

    diffusers.utils.logging.set_verbosity_error()
    return AutoencoderKL
