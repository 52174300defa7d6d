"""CT padding outside the reconstruction circle: outside the field of view, never air.

Scanners fill the corners outside the reconstructed circle with a padding value (GE -2048 HU,
others -3024 HU), named by DICOM's PixelPaddingValue (and PixelPaddingRangeLimit) in stored
units. Read as HU it is not tissue: interpolation mixes it into the body edge and metrics
would score it. For training and evaluation a CT is therefore read as

- padding: voxels below the window floor that are in the header's padding range, and all
  voxels below ``PADDING_BELOW_HU`` (no tissue or air is that low; NIfTI files carry no
  padding tag). A header padding value at or above -1024 HU (some scanners pad with air) is
  not trusted: it would turn air inside the body, e.g. in the lungs, into "outside";
- clipped: every value below the window floor (-1024 HU) becomes the floor, so noisy air
  (-1030 HU) and padding both read as air where they are used as values;

and the padding voxels are outside the field of view (masks exclude them). `convert` keeps
the raw values.

Example:
    >>> import numpy as np
    >>> from medxlate.io.volume import Volume
    >>> v = Volume(np.array([[[-2048.0, -1030.0, 40.0]]]), np.eye(4), "CT")
    >>> clean, pad = clean_ct(v, floor=-1024.0)
    >>> clean.array.ravel().tolist(), pad.ravel().tolist()
    ([-1024.0, -1024.0, 40.0], [True, False, False])
"""

from __future__ import annotations

import numpy as np

from medxlate.io.volume import Volume

#: Values below this are padding whatever the header says (air is -1000 HU, with noise
#: rarely below -1100).
PADDING_BELOW_HU = -1500.0


def padding_mask(vol: Volume, floor: float = -1024.0) -> np.ndarray:
    """Boolean mask of ``vol``'s padding voxels (see the module docstring)."""
    array = vol.array
    pad = array < PADDING_BELOW_HU
    hu_range = vol.meta.get("padding_hu")
    if hu_range:
        lo, hi = min(hu_range), max(hu_range)
        pad |= (array >= lo) & (array <= hi) & (array < floor)
    return pad


def clean_ct(vol: Volume, floor: float = -1024.0) -> tuple[Volume, np.ndarray]:
    """(CT clipped below at ``floor``, padding mask) on ``vol``'s grid."""
    pad = padding_mask(vol, floor)
    array = np.maximum(vol.array, np.float32(floor)).astype(np.float32, copy=False)
    return vol.with_array(array), pad
