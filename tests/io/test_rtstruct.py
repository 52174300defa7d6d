"""RTSTRUCT ROIs rasterised onto a reference grid, checked against voxel sets computed from
the CT headers themselves (pydicom, by hand), not from medxlate's geometry."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medxlate.errors import InputError
from medxlate.io.dicom_read import read_dicom
from medxlate.io.rtstruct import read_rtstruct, roi_mask
from medxlate.io.volume import Volume
from tests.io.dicom_build import ct_series, polygon, rtstruct


def _headers(folder):
    """Per slice (sorted along the normal): IPP, row/column directions, pixel spacing."""
    files = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.iterdir())
             if p.suffix == ".dcm"]
    iop = np.asarray(files[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    files.sort(key=lambda d: float(np.dot(np.asarray(d.ImagePositionPatient, float), normal)))
    return {"ipp": np.asarray([d.ImagePositionPatient for d in files], float),
            "row": iop[:3], "col": iop[3:], "ps": np.asarray(files[0].PixelSpacing, float),
            "rows": int(files[0].Rows), "cols": int(files[0].Columns)}


def _pixel_lps(h, s):
    """LPS (rows, cols, 3) of the pixel centres of slice ``s`` (PS3.3 C.7.6.2.1.1)."""
    r, c = np.meshgrid(np.arange(h["rows"]), np.arange(h["cols"]), indexing="ij")
    return (h["ipp"][s] + c[..., None] * h["ps"][1] * h["row"]
            + r[..., None] * h["ps"][0] * h["col"])


def _as_slice_row_col(h, mask, vol):
    """The mask's voxels as (slice, row, column) of the series, by the headers' geometry."""
    lps = vol.world(np.argwhere(mask)) * np.array([-1.0, -1.0, 1.0])
    normal = np.cross(h["row"], h["col"])
    s = np.argmin(np.abs((lps @ normal)[:, None] - (h["ipp"] @ normal)[None]), axis=1)
    d = lps - h["ipp"][s]
    c = np.rint(d @ h["row"] / h["ps"][1]).astype(int)
    r = np.rint(d @ h["col"] / h["ps"][0]).astype(int)
    return {(int(a), int(b), int(e)) for a, b, e in zip(s, r, c)}


def _expected(h, slices, inside):
    out = set()
    for s in slices:
        rows, cols = np.nonzero(inside(_pixel_lps(h, s)))
        out |= {(s, int(r), int(c)) for r, c in zip(rows, cols)}
    return out


def _box(lo, hi):
    return lambda p: ((p[..., 0] > lo[0]) & (p[..., 0] < hi[0]) & (p[..., 1] > lo[1])
                      & (p[..., 1] < hi[1]))


def _triangle(a, b, c):
    def side(p, u, v):
        return (v[0] - u[0]) * (p[..., 1] - u[1]) - (v[1] - u[1]) * (p[..., 0] - u[0])

    return lambda p: (side(p, a, b) > 0) & (side(p, b, c) > 0) & (side(p, c, a) > 0)


SQUARE = [(-80.1, -30.2), (-60.3, -30.2), (-60.3, 10.7), (-80.1, 10.7)]
OUTER = [(-20.1, -20.1), (40.3, -20.1), (40.3, 40.3), (-20.1, 40.3)]
INNER = [(0.1, 0.1), (20.1, 0.1), (20.1, 20.1), (0.1, 20.1)]
TRIANGLE = [(50.2, -50.3), (90.1, -50.3), (60.7, 20.2)]   # counter-clockwise in (x, y)


@pytest.fixture(scope="module")
def real(ct_dir, ct_vol, tmp_path_factory):
    """The real GE CT (../shared/data) and an RTSTRUCT drawn on its slices 5-6, 10 and 12."""
    h = _headers(ct_dir)
    z = h["ipp"][:, 2]
    frame = ct_vol.meta["dicom"]["FrameOfReferenceUID"]
    path = rtstruct(tmp_path_factory.mktemp("rt") / "rs.dcm", {
        "SQUARE": [polygon(SQUARE, z[5]), polygon(SQUARE, z[6])],
        "RING": [polygon(OUTER, z[10]), polygon(INNER[::-1], z[10])],
        "TRIANGLE": [polygon(TRIANGLE, z[12])],
        "ISO": [polygon([(0.0, 0.0)], z[3])],
        "OTHER FRAME": [polygon(SQUARE, z[5])],
        "BETWEEN": [polygon(SQUARE, (z[5] + z[6]) / 2)],
        "ABOVE": [polygon(SQUARE, z[-1] + 50.0)],
    }, frame, frames={"OTHER FRAME": "1.2.3.4"}, kinds={"ISO": "POINT"})
    return h, read_rtstruct(path)


@pytest.mark.parametrize("name, slices, inside", [
    ("SQUARE", (5, 6), _box((-80.1, -30.2), (-60.3, 10.7))),
    ("RING", (10,), lambda p: _box((-20.1, -20.1), (40.3, 40.3))(p)
     & ~_box((0.1, 0.1), (20.1, 20.1))(p)),
    ("TRIANGLE", (12,), _triangle(*TRIANGLE)),
])
def test_real_ct_mask_is_the_analytic_voxel_set(real, ct_vol, name, slices, inside):
    h, structures = real
    mask, warnings = roi_mask(structures, name, ct_vol)
    assert warnings == []
    expected = _expected(h, slices, inside)
    assert len(expected) > 500
    assert _as_slice_row_col(h, mask, ct_vol) == expected
    assert int(mask.sum()) == len(expected)


def test_ring_area_matches_its_millimetres(real, ct_vol):
    h, structures = real
    mask, _ = roi_mask(structures, "RING", ct_vol)
    area_mm2 = mask.sum() * h["ps"][0] * h["ps"][1]
    assert area_mm2 == pytest.approx(60.4 ** 2 - 20.0 ** 2, rel=0.01)   # hole left empty


@pytest.mark.parametrize("name, words", [
    ("PTV", "no ROI named 'PTV' (it has 'SQUARE', 'RING', 'TRIANGLE', 'ISO'"),
    ("ISO", "has no closed planar contours (only POINT)"),
    ("OTHER FRAME", "is in frame of reference 1.2.3.4, the reference CT in 1.3.6.1"),
    ("BETWEEN", "lies between two slices"),
    ("ABOVE", "covers no voxel of the reference grid"),
])
def test_bad_roi_one_clear_error(real, ct_vol, name, words):
    with pytest.raises(InputError, match="^.*$") as err:
        roi_mask(real[1], name, ct_vol)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_roi_name_falls_back_to_any_case(real, ct_vol):
    assert roi_mask(real[1], "square", ct_vol)[0].sum() == roi_mask(real[1], "SQUARE",
                                                                      ct_vol)[0].sum()


def test_reference_without_dicom_header_warns(real, ct_vol):
    bare = Volume(ct_vol.array, ct_vol.affine, "CT")
    mask, warnings = roi_mask(real[1], "SQUARE", bare)
    assert mask.sum() == roi_mask(real[1], "SQUARE", ct_vol)[0].sum()
    assert len(warnings) == 1 and "frame of reference cannot be checked" in warnings[0]


def test_a_ct_file_is_not_an_rtstruct(ct_dir):
    with pytest.raises(InputError, match="not an RTSTRUCT"):
        read_rtstruct(next(ct_dir.glob("*.dcm")))


def test_flipped_series_axes(tmp_path):
    """Rows towards patient Right, columns Anterior: canonical order flips both axes."""
    hu = np.full((3, 16, 20), -1000, np.int16)
    uids = ct_series(tmp_path / "ct", hu, origin=(30.0, 25.0, -4.0), row_dir=(-1, 0, 0),
                     col_dir=(0, -1, 0), pixel_mm=(2.5, 3.0), slice_mm=2.0)
    vol = read_dicom(tmp_path / "ct")
    h = _headers(tmp_path / "ct")
    box = [(-10.2, -11.1), (12.4, -11.1), (12.4, 7.9), (-10.2, 7.9)]
    path = rtstruct(tmp_path / "rs.dcm", {"BOX": [polygon(box, -2.0)]}, uids["frame"])
    mask, _ = roi_mask(read_rtstruct(path), "BOX", vol)
    expected = _expected(h, (1,), _box((-10.2, -11.1), (12.4, 7.9)))
    assert len(expected) == 8 * 8   # x 28.8 ... 30 - 3c; y 25 - 2.5r, by hand: 8 columns, 8 rows
    assert _as_slice_row_col(h, mask, vol) == expected


def test_pydicom_rtstruct_file(tmp_path):
    """pydicom's own test RTSTRUCT (saved without preamble): ROI 'patient' is a 400 x 300 mm
    rectangle on z = -200, -190, -180; its isocentres are points."""
    structures = read_rtstruct(get_testdata_file("rtstruct.dcm"))
    assert structures.names() == ["patient", "Isocenter 1", "Isocenter 2"]
    affine = np.diag([7.0, 7.0, 10.0, 1.0])
    affine[:3, 3] = (-250.0, -160.0, -210.0)      # RAS; slices z = -210 ... -160
    frame = structures.rois[0].frame_of_reference_uid
    grid = Volume(np.zeros((72, 47, 6), np.float32), affine, "CT",
                  {"dicom": {"FrameOfReferenceUID": frame}})
    mask, warnings = roi_mask(structures, "patient", grid)
    x = -250.0 + 7.0 * np.arange(72)             # RAS x = -LPS x; the rectangle is symmetric
    y = -160.0 + 7.0 * np.arange(47)
    per_slice = int((np.abs(x) < 200).sum() * (np.abs(y) < 150).sum())
    assert warnings == []
    assert [int(mask[:, :, k].sum()) for k in range(6)] == [0, per_slice, per_slice,
                                                             per_slice, 0, 0]
    with pytest.raises(InputError, match="only POINT"):
        roi_mask(structures, "Isocenter 1", grid)
