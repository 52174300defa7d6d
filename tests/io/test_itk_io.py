"""MetaImage and NRRD through SimpleITK: LPS<->RAS, detached headers, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from medxlate.errors import InputError, OutputError
from medxlate.io.itk import affine_from_itk, itk_geometry
from medxlate.io.readers import read_volume, write_volume
from medxlate.io.volume import Volume


def _oblique_volume() -> Volume:
    theta = np.deg2rad(12.0)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[np.cos(theta), 0, np.sin(theta)], [0, -1, 0],
                               [-np.sin(theta), 0, np.cos(theta)]]) @ np.diag([0.7, 1.2, 3.0])
    affine[:3, 3] = [-50.0, 80.5, 12.25]
    data = np.random.default_rng(3).uniform(-1000, 2000, (7, 6, 5)).astype(np.float32)
    return Volume(data, affine, "CT")


def test_geometry_conversion_is_an_involution():
    vol = _oblique_volume()
    spacing, origin, direction = itk_geometry(vol.affine)
    np.testing.assert_allclose(affine_from_itk(spacing, origin, direction), vol.affine,
                               atol=1e-12)
    # ITK origin is LPS: x and y negated
    np.testing.assert_allclose(origin, [50.0, -80.5, 12.25])


@pytest.mark.parametrize("name", ["v.mha", "v.mhd", "v.nrrd", "v.nhdr"])
def test_round_trip(tmp_path, name):
    vol = _oblique_volume().canonical()
    write_volume(vol, tmp_path / name)
    back = read_volume(tmp_path / name)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-6)
    np.testing.assert_array_equal(back.array, vol.array)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    img = sitk.ReadImage(str(tmp_path / name))  # SimpleITK's own view, in LPS
    lps_origin = np.array(img.GetOrigin())
    np.testing.assert_allclose(lps_origin * [-1, -1, 1], vol.origin, atol=1e-6)


def test_detached_header_needs_overwrite_for_its_data_file(tmp_path):
    vol = _oblique_volume()
    write_volume(vol, tmp_path / "a.mhd")
    data_files = sorted(p.name for p in tmp_path.iterdir())
    assert data_files[0] == "a.mhd" and len(data_files) == 2
    with pytest.raises(OutputError, match="--overwrite"):
        write_volume(vol, tmp_path / "a.mhd")
    write_volume(vol.with_array(vol.array + 1), tmp_path / "a.mhd", overwrite=True)
    np.testing.assert_array_equal(read_volume(tmp_path / "a.mhd").array,
                                  vol.canonical().array + 1)


def test_four_d_and_vector_images_refused(tmp_path):
    sitk.WriteImage(sitk.Image([3, 3, 3, 2], sitk.sitkFloat32), str(tmp_path / "t.mha"))
    with pytest.raises(InputError, match=r"4D .*axis 3 has 2"):
        read_volume(tmp_path / "t.mha")
    sitk.WriteImage(sitk.Image([3, 3, 3], sitk.sitkVectorFloat32, 3), str(tmp_path / "v.mha"))
    with pytest.raises(InputError, match="3 components per voxel"):
        read_volume(tmp_path / "v.mha")
    (tmp_path / "bad.mha").write_text("ObjectType = Image\nNDims = banana\n")
    with pytest.raises(InputError, match="not a readable MetaImage/NRRD"):
        read_volume(tmp_path / "bad.mha")
