"""CT numbers of a real-anatomy phantom, painted on the label map's own grid.

Per subject and tissue class a mean HU is drawn from the class's literature range
(:data:`~medxlate.phantom.labels.CLASSES`); smooth within-tissue variation comes from random
plane-wave fields fixed to the anatomy; cortical bone gets its own long-wavelength density
field so that the skull's HU varies along it (thick dense vault, thinner temporal squama);
``soft_tissue`` is a fat/muscle mixture with a smooth fat fraction. Partial volume at
boundaries comes from a Gaussian on the 1 mm map (sigma 0.5 voxel, more for a coarser CT
grid), the interpolation onto the CT grid, and then the scanner's blur and noise
(:func:`medxlate.phantom.ct.acquire`).
"""

from __future__ import annotations

import numpy as np
from medxlate.phantom.fields import WaveField, on_grid
from medxlate.phantom.labels import CLASS_BY_NAME, CLASSES


def sample_hu(rng: np.random.Generator) -> np.ndarray:
    """Mean HU per class for one subject (uniform in each class's range)."""
    return np.array([rng.uniform(*c.hu_mean) if c.hu_mean[1] > c.hu_mean[0] else c.hu_mean[0]
                     for c in CLASSES], np.float32)


def sample_fields(rng: np.random.Generator) -> dict[str, WaveField]:
    """Unit-RMS smooth fields of one subject: tissue texture, bone density, fat fraction."""
    return {"texture": WaveField.random(rng, 16, (15.0, 60.0), 1.0),
            "bone": WaveField.random(rng, 12, (40.0, 160.0), 1.0),
            "fat": WaveField.random(rng, 12, (20.0, 80.0), 1.0)}


def field_images(fields: dict, fat_mean: float, shape, index_to_mm) -> dict[str, np.ndarray]:
    """The subject's fields on a grid: ``texture`` and ``bone`` (unit RMS) and ``fat``, the
    fat fraction in [0, 1] of ``soft_tissue`` (mean ``fat_mean``, SD 0.25)."""
    f = on_grid(fields["fat"], shape, index_to_mm, step=4.0)
    return {"texture": on_grid(fields["texture"], shape, index_to_mm, step=4.0),
            "bone": on_grid(fields["bone"], shape, index_to_mm, step=8.0),
            "fat": np.clip(np.float32(fat_mean) + np.float32(0.25) * f, 0, 1)}


def paint_ct(classes: np.ndarray, hu: np.ndarray, images: dict) -> np.ndarray:
    """HU image (float32) of a class map on its own grid, before the scanner.

    Args:
        classes: uint8 class map.
        hu: per-class mean HU of the subject (:func:`sample_hu`).
        images: the subject's fields on the map's grid (:func:`field_images`).
    """
    image = hu[classes]
    sd = np.array([c.hu_sd for c in CLASSES], np.float32)
    bone = CLASS_BY_NAME["cortical_bone"].id
    sd[bone] = 0
    texture = images["texture"]
    image += sd[classes] * texture
    in_bone = classes == bone
    if in_bone.any():
        image[in_bone] += (np.float32(CLASS_BY_NAME["cortical_bone"].hu_sd)
                           * images["bone"][in_bone])
    soft = classes == CLASS_BY_NAME["soft_tissue"].id
    if soft.any():
        f = images["fat"][soft]
        fat, muscle = hu[CLASS_BY_NAME["fat"].id], hu[CLASS_BY_NAME["muscle"].id]
        image[soft] = f * fat + (1 - f) * muscle + np.float32(5.0) * texture[soft]
    return image

