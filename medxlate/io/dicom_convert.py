"""DICOM series -> NIfTI, streamed slice by slice, int16 when the values allow it.

`medxlate convert` of a CT series: reading the whole series into float32 and writing it
again held several full copies (1.36 GB peak for a 409-slice CT) and wrote float32 for
whole-number HU. Here each frame is decoded, rescaled and appended to the (compressed) output
in the canonical (RAS+) order that :func:`medxlate.io.read_volume` gives, so memory holds one
slice at a time. The data type is int16 when every RescaleSlope/Intercept is a whole number
and every value fits int16 (the file then holds exactly the HU, with scl_slope/scl_inter
unset), float32 otherwise; a slice that does not fit int16 restarts the write in float32.

Geometry is the one :func:`medxlate.io.dicom_stack.sorted_stack` gives (sform = qform, code 1,
exactly as :func:`medxlate.io.nifti.write_nifti` writes a Volume). Series whose slice axis is
not the canonical third axis (sagittal or coronal stacks) are read whole and written with
:func:`write_nifti`, still as int16 when the values allow it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np

from medxlate.io.atomic import atomic_path
from medxlate.io.dicom_files import find_dicom_files, group_series, select_series
from medxlate.io.dicom_frames import frames_of
from medxlate.io.dicom_stack import frame_values, integral_rescale, sorted_stack

INT16 = np.iinfo(np.int16)


class _NotInt16(Exception):
    """A slice holds values outside int16: write float32 instead."""


def _fits_int16(values: np.ndarray) -> bool:
    return values.size == 0 or (int(values.min()) >= INT16.min and int(values.max()) <= INT16.max)


def integer_dtype(array: np.ndarray) -> type:
    """np.int16 when every value of ``array`` is a whole number in int16's range (checked one
    slice at a time along the last axis, no full-size temporaries), else np.float32."""
    for k in range(array.shape[-1]):
        plane = array[..., k]
        if not (np.isfinite(plane).all() and _fits_int16(plane)
                and np.array_equal(plane, np.rint(plane))):
            return np.float32
    return np.int16


def _header(affine: np.ndarray, shape, dtype) -> nib.Nifti1Header:
    header = nib.Nifti1Header()
    header.set_data_shape(tuple(int(n) for n in shape))
    header.set_data_dtype(dtype)
    header.set_sform(affine, code=1)
    header.set_qform(affine, code=1)
    header.set_xyzt_units("mm")
    header.set_zooms(tuple(float(z) for z in np.linalg.norm(affine[:3, :3], axis=0)))
    return header


def _write_stream(path: Path, frames, affine, shape, transform, dtype, where: str,
                  overwrite: bool, frame_shape) -> None:
    """Write the frames (sorted along the normal) as canonical slices of a NIfTI file."""
    header = _header(affine, shape, dtype)
    order = frames[::-1] if transform[2, 1] < 0 else frames
    # as nibabel's apply_orientation: flip input axes, then move them to their output axes
    flip_x, flip_y = transform[0, 1] < 0, transform[1, 1] < 0
    swap = int(transform[0, 0]) == 1  # input x (DICOM columns) becomes canonical y
    integer = dtype == np.int16
    with atomic_path(path, overwrite) as tmp, nib.openers.ImageOpener(str(tmp), "wb") as fobj:
        header.write_to(fobj)  # with the empty extension flag, up to vox_offset 352
        for frame in order:
            values = frame_values(frame, where, frame_shape, integer)  # (rows, columns)
            plane = values.T  # (x = columns, y = rows), as read_volume stacks them
            if flip_x:
                plane = plane[::-1]
            if flip_y:
                plane = plane[:, ::-1]
            if swap:
                plane = plane.T
            if integer and not _fits_int16(plane):
                raise _NotInt16
            # NIfTI stores x fastest: the Fortran order of the (x, y) plane
            fobj.write(np.asarray(plane, dtype=header.get_data_dtype()).tobytes(order="F"))


def dicom_to_nifti(src: Path | str, dst: Path | str, series: str | int | None = None,
                   skip_derived: bool = False, overwrite: bool = False) -> dict:
    """Convert one DICOM series to a NIfTI file; returns shape, orientation and data type.

    Raises the errors of :func:`medxlate.io.dicom_read.read_dicom`, and OutputError when the
    output cannot be written.
    """
    src, dst = Path(src), Path(dst)
    where = str(src)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom\.")
        chosen = select_series(group_series(find_dicom_files(src), skip_derived), series, src)
        frames, affine = sorted_stack(frames_of(chosen.files), where)
        first = np.asarray(frames[0].pixels())
        shape = (first.shape[1], first.shape[0], len(frames))
        ornt = nib.orientations.io_orientation(affine)
        ras = nib.orientations.axcodes2ornt(("R", "A", "S"))
        transform = nib.orientations.ornt_transform(ornt, ras)
        out_affine = affine @ nib.orientations.inv_ornt_aff(transform, shape)
        out_shape = tuple(shape[int(np.flatnonzero(transform[:, 0] == k)[0])] for k in range(3))
        integer = integral_rescale(frames) and first.dtype.kind in "iu"
        if int(transform[2, 0]) == 2:  # the slice axis stays the third axis: stream it
            for dtype in ((np.int16, np.float32) if integer else (np.float32,)):
                try:
                    _write_stream(dst, frames, out_affine, out_shape, transform, dtype, where,
                                  overwrite, first.shape)
                    break
                except _NotInt16:
                    continue
        else:
            from medxlate.io.dicom_read import read_dicom
            from medxlate.io.nifti import write_nifti

            vol = read_dicom(src, series=series, skip_derived=skip_derived)
            dtype = integer_dtype(vol.array) if integer else np.float32
            write_nifti(vol, dst, overwrite, dtype=dtype)
    return {"shape": list(out_shape), "orientation": "".join(nib.aff2axcodes(out_affine)),
            "dtype": np.dtype(dtype).name}
