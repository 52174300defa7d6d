"""Step 2 (optional): MR bias-field correction with N4 (Tustison et al. 2010, SimpleITK).

N4 is fitted on a shrunken copy inside the body mask (fast), then the estimated log bias
field is evaluated on the full-resolution grid and divided out, so the corrected image keeps
the input's resolution and geometry.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medxlate.io.volume import Volume
from medxlate.preprocess.itk_bridge import array_of, to_sitk


def n4_correct(mr: Volume, mask: np.ndarray, params: dict) -> tuple[Volume, dict]:
    """Divide ``mr`` by its N4 bias field; returns the corrected volume and a small report.

    Args:
        mr: MR volume (non-negative magnitudes; negative values are clipped to 0).
        mask: body mask on ``mr``'s grid, where the field is fitted.
        params: ``steps.bias_correction`` (``shrink``, ``iterations`` per level,
            ``convergence``).
    """
    image = to_sitk(mr.with_array(np.clip(mr.array, 0, None)))
    mask_image = to_sitk(mask.astype(np.uint8), mr.affine, sitk.sitkUInt8)
    shrink = [max(1, min(int(params["shrink"]), n // 8)) for n in image.GetSize()]
    small = sitk.Shrink(image, shrink)
    small_mask = sitk.Shrink(mask_image, shrink)
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations([int(i) for i in params["iterations"]])
    n4.SetConvergenceThreshold(float(params["convergence"]))
    n4.Execute(small, small_mask)
    log_field = array_of(n4.GetLogBiasFieldAsImage(image))
    corrected = np.clip(mr.array, 0, None) / np.exp(log_field)
    field = np.exp(log_field[mask.astype(bool)]) if mask.any() else np.ones(1)
    report = {"shrink": shrink, "field_min": round(float(field.min()), 4),
              "field_max": round(float(field.max()), 4)}
    return mr.with_array(corrected.astype(np.float32)), report
