"""Extra MR contrasts of a subject (``mr_t1``, ``mr_t2``, ...): find, read, register.

Every extra contrast is registered rigidly onto the subject's reference MR (``mr``) with the
same machinery as CT -> MR (Mattes MI, seeded sampling), then follows the reference grid,
mask and crop, and is normalised with its own percentiles (the dataset's MR normalisation).
A contrast stored in the very same file as the reference (``medxlate phantom`` hard-links
``mr_t1`` to ``mr``) is the reference: it is not registered.
"""

from __future__ import annotations

import os
from pathlib import Path

from medxlate.io.volume import Volume

#: Contrast tags an ``mr_<tag>`` file or CSV column may name (medxlate.models.registry).
CONTRAST_TAGS = ("t1", "t1ce", "t2", "flair", "pd")


def same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def register_contrast(ref: Volume, vol: Volume, params: dict, mask, seed: int, say):
    """Rigid ITK transform mapping reference-MR points to the contrast's points."""
    from medxlate.preprocess.register import register_ct_to_mr

    rigid = {**params, "transform": "rigid", "init": "geometry",
             # Contrasts of one session share the scanner frame: no rotation search.
             "init_search": False}
    transform, report = register_ct_to_mr(ref, vol, rigid, mask, None, seed=seed, log=say)
    return transform, report
