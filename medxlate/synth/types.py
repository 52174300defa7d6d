"""The types the stages of synthesis share: options, a prepared volume, a model's output.

:mod:`medxlate.synth.volume` (prepare, finish), :mod:`medxlate.synth.volume3d` and
:mod:`medxlate.synth.stream` (the model stage) all import these from here, so that none of
them has to import another to know what it receives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from medxlate.io.volume import Volume
from medxlate.synth.slicer import SlicePlan

MODALITY = {"mri2ct": ("MR", "CT"), "ct2mri": ("CT", "MR")}


@dataclass
class SynthOptions:
    """How to translate: sampler settings, samples, masking and batching."""

    direction: str
    sampler: str
    steps: int | None = None
    eta: float = 0.0
    samples: int = 1
    batch_size: int = 8
    mask: bool = True
    source: str | None = None  # modality tags ("t1", "ct"...); None: from direction
    target: str | None = None


def translation_modalities(opts: SynthOptions) -> tuple[str, str]:
    """("MR"|"CT", "MR"|"CT"): the intensity conventions of the source and target."""
    from medxlate.models.registry import image_modality

    if opts.source is not None and opts.target is not None:
        return image_modality(opts.source), image_modality(opts.target)
    return MODALITY[opts.direction]


@dataclass
class Prepared:
    """A 2D/2.5D model's input volume, ready for :func:`run_model` (no torch involved)."""

    vol: Volume
    mask: np.ndarray          # body mask on vol's grid
    work: Volume              # vol at the checkpoint's training spacing
    slices_x: np.ndarray      # normalised, slice axis first
    axis: int
    plan: SlicePlan
    background: float         # network-space value of the source background
    config: dict[str, Any]
    tgt_mod: str
    t_params: dict[str, float]
    fill: float               # output value outside the body / where no tile reached
    masked: bool              # opts.mask: the background is set outside the body


@dataclass
class ModelOutput:
    """Blended model outputs on the working grid (slice axis first)."""

    total: np.ndarray
    weights: np.ndarray
    total_std: np.ndarray | None
    std_weights: np.ndarray
