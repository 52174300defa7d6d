"""Volume I/O: NIfTI, MetaImage/NRRD and DICOM series in and out, with exact geometry.

This package never imports torch.
"""

from medxlate.io.readers import read_volume, write_volume
from medxlate.io.volume import Volume

__all__ = ["Volume", "read_volume", "write_volume"]
