"""medxlate: batch MRI<->CT synthesis on real NIfTI and DICOM studies."""

__version__ = "0.1.0"
