"""Step 9: Canny contour maps of normalised slices (scikit-image ``feature.canny``).

Slices are in network space ([-1, 1] for CT windows and MR percentiles), so the gradient
thresholds mean the same thing for every subject: a CT step from soft tissue (40 HU) to
cortical bone (1200 HU) is 0.58, from air to soft tissue 0.52, fat to muscle 0.07.
"""

from __future__ import annotations

import numpy as np
from skimage.feature import canny


def contour_maps(slices: np.ndarray, params: dict) -> np.ndarray:
    """uint8 (N, H, W) edge maps (0/1) of float (N, H, W) slices.

    Args:
        params: ``steps.contours`` (``sigma`` in pixels, ``low_threshold`` and
            ``high_threshold`` on the gradient magnitude of the smoothed slice).
    """
    out = np.zeros(slices.shape, np.uint8)
    for n, plane in enumerate(slices):
        plane = np.asarray(plane, dtype=np.float32)
        if float(plane.max()) == float(plane.min()):
            continue
        out[n] = canny(plane, sigma=float(params["sigma"]),
                       low_threshold=float(params["low_threshold"]),
                       high_threshold=float(params["high_threshold"]))
    return out
