"""Network space at synthesis: the source as the network sees it, and the target's scale.

Shared by the 2D/2.5D path (:mod:`medxlate.synth.volume`) and the 3D one
(:mod:`medxlate.synth.volume3d`).
"""

from __future__ import annotations

import numpy as np

from medxlate.intensity import modality_spec, normalise, normalise_ct, normalise_mr
from medxlate.io.volume import Volume
from medxlate.preprocess.mask import body_mask
from medxlate.synth.grid import to_spacing

CT_BACKGROUND_HU = -1024.0
# A synthetic MR has no subject-specific scale: percentile-normalised models write it as
# 0..1000 (arbitrary units), z-scored models as z-scores, unless the checkpoint's `data`
# records `mr_reference` ({"low", "high"} or {"mean", "std"}).
MR_DEFAULT_SCALE = {"percentile": {"low": 0.0, "high": 1000.0},
                    "zscore": {"mean": 0.0, "std": 1.0}}


def network_input(vol: Volume, model, src_mod: str, masked: bool):
    """The source as the network sees it (2D and 3D models alike).

    Returns (body mask on ``vol``'s grid, the volume at the training spacing, its body mask,
    the normalised array, the normalised background value). As preprocess does for training
    data, outside the body MR is 0 and CT -1024 HU before normalisation (when ``masked``), and
    padding takes the normalised value of that background.
    """
    norm = model.meta.normalisation
    spacing = (model.meta.data or {}).get("spacing_mm")
    mask = body_mask(vol, modality=src_mod)
    work = to_spacing(vol, spacing)
    work_mask = to_spacing(vol.with_array(mask.astype(np.float32)), spacing,
                           order=0).array > 0.5
    raw_bg = CT_BACKGROUND_HU if src_mod == "CT" else 0.0
    source = np.where(work_mask, work.array, raw_bg) if masked else work.array
    x, params = normalise(source, src_mod, norm, mask=work_mask)
    if src_mod == "CT":
        background = float(normalise_ct(np.float32(raw_bg), norm))
    else:
        background = float(normalise_mr(np.zeros(1, np.float32), norm, params,
                                        np.zeros(1, bool))[0])
    return mask, work, work_mask, x, background


def network_background(spec: dict) -> float:
    """Network-space value of the background (air / no signal) for a normalisation entry."""
    return 0.0 if spec["kind"] == "zscore" else -1.0


def target_params(model, modality: str) -> dict[str, float]:
    if modality == "CT":
        return {}
    kind = modality_spec(model.meta.normalisation, "MR")["kind"]
    return dict(model.meta.data.get("mr_reference") or MR_DEFAULT_SCALE[kind])
