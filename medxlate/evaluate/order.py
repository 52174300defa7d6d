"""The voxel order a file stores: the image metrics run on arrays in that order.

The SynthRAD evaluation code reads each image with SimpleITK and scores
``GetArrayFromImage(img)`` (transposed to x, y, z): the voxels in the order the file stores
them. medxlate's readers return canonical RAS+ arrays, which flips the first two axes of an
LPS-ordered .mha (how SynthRAD ships its data). Most metrics do not care, but MS-SSIM's
2x2x2 box filter with stride 2 and its edge padding to 97 voxels are not flip invariant, so
the canonical array gives a different MS-SSIM (8.6e-4 on a SynthRAD pelvis). Here we find
the file's stored orientation from its header and map canonical arrays back to it.

Example:
    >>> import numpy as np
    >>> ornt = np.array([[0, -1], [1, -1], [2, 1]])  # stored L->R, P->A, I->S (LPS)
    >>> to_stored(np.arange(8).reshape(2, 2, 2), ornt)[:, :, 0].tolist()
    [[6, 4], [2, 0]]
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

_RAS = nib.orientations.axcodes2ornt(("R", "A", "S"))


def stored_ornt(path: Path | str) -> np.ndarray | None:
    """nibabel orientation (axis, flip per stored axis) of an image file's voxel axes.

    Read from the header only (NIfTI: the affine ITK would choose; MetaImage/NRRD: ITK's
    direction). None for DICOM and anything else without one stored voxel order; those are
    scored in canonical order.
    """
    from medxlate.errors import UsageError
    from medxlate.io.readers import format_of

    path = Path(path)
    try:
        fmt = format_of(path)
    except UsageError:  # unknown format: the reader has already said so, or will
        return None
    if fmt == "nifti":
        from medxlate.io.nifti import choose_affine

        affine = choose_affine(nib.load(str(path)))
    elif fmt == "itk":
        import SimpleITK as sitk

        from medxlate.io.itk import affine_from_itk

        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        if reader.GetDimension() != 3:
            return None
        affine = affine_from_itk(reader.GetSpacing(), reader.GetOrigin(),
                                 reader.GetDirection())
    else:
        return None
    return nib.orientations.io_orientation(affine)


def to_stored(array: np.ndarray, ornt: np.ndarray | None) -> np.ndarray:
    """A canonical (RAS+) array in the stored voxel order ``ornt`` (C-contiguous).

    The inverse of :meth:`medxlate.io.Volume.canonical`, which applied
    ``ornt_transform(ornt, RAS)``.
    """
    if ornt is None:
        return array
    back = nib.orientations.ornt_transform(_RAS, ornt)
    return np.ascontiguousarray(nib.orientations.apply_orientation(array, back))


def order_label(ornt: np.ndarray | None) -> str:
    """'LPS' etc.: the direction each stored axis increases towards ('RAS (canonical)' when
    the file has no single stored order)."""
    if ornt is None:
        return "RAS (canonical; the reference has no single stored voxel order)"
    return "".join(nib.orientations.ornt2axcodes(ornt))
