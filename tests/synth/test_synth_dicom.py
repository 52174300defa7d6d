"""DICOM in and out: the real shared MR series, a zip of it, and a derived CT series."""

from __future__ import annotations

import zipfile

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.io.readers import read_volume
from tests.synth.conftest import make_checkpoint

runner = CliRunner()


@pytest.fixture(scope="module")
def mr_weights(tmp_path_factory):
    # 2 x 2 x 2.5 mm working grid: the 512 x 512 x 12 MR (0.5 mm pixels) becomes 128 x 128 x 12.
    return make_checkpoint(tmp_path_factory.mktemp("w") / "p2p.safetensors",
                           data={"spacing_mm": [2.0, 2.0, 2.5], "slice_axis": 2},
                           n_downs=6, slice_size=[64, 64])


def run(*args: str):
    return runner.invoke(app, ["synthesize", "--model", "pix2pix", "--quiet", *args])


def _uids(ds, tag_name: str) -> set[str]:
    """Every value of ``tag_name`` anywhere in ``ds`` (sequences included)."""
    found = set()

    def visit(d, elem):
        if elem.keyword == tag_name:
            found.add(str(elem.value))

    ds.walk(visit)
    return found


def test_real_mr_series_to_nifti_keeps_geometry(tmp_path, mridir, mr_weights):
    series = mridir / "mr_t2"
    res = run("--weights", str(mr_weights), "--in", str(series), "--out",
              str(tmp_path / "sct.nii.gz"))
    assert res.exit_code == 0, res.output
    mr = read_volume(series)
    sct = read_volume(tmp_path / "sct.nii.gz")
    assert sct.shape == mr.shape == (512, 512, 12)
    np.testing.assert_allclose(sct.affine, mr.affine, atol=1e-4, rtol=0)
    assert sct.array.min() >= -1024.0 and (sct.array == -1024.0).any()


def test_zip_input_and_dicom_output_reference_the_mr_series(tmp_path, mridir, mr_weights):
    series = mridir / "mr_t2"
    archive = tmp_path / "mr.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(series.iterdir()):
            zf.write(f, f"mr/{f.name}")
    out = tmp_path / "sct_dicom"
    res = run("--weights", str(mr_weights), "--in", str(archive), "--out", str(out),
              "--out-format", "dicom")
    assert res.exit_code == 0, res.output
    mr = read_volume(series)
    sct = read_volume(out)
    assert sct.modality == "CT"
    assert sct.same_grid(mr, atol_mm=1e-4)
    files = sorted(p for p in out.iterdir() if p.is_file())
    assert len(files) == 12
    src = pydicom.dcmread(next(series.iterdir()), stop_before_pixels=True)
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert ds.Modality == "CT"
    assert ds.StudyInstanceUID == src.StudyInstanceUID
    assert ds.FrameOfReferenceUID == src.FrameOfReferenceUID
    assert ds.PatientID == src.PatientID
    assert ds.SeriesInstanceUID != src.SeriesInstanceUID
    # the derived series points back at the MR: its series UID or its images' SOP UIDs
    series_refs = _uids(ds, "SeriesInstanceUID") | _uids(ds, "ReferencedSeriesInstanceUID")
    sop_refs = _uids(ds, "ReferencedSOPInstanceUID")
    assert src.SeriesInstanceUID in series_refs or sop_refs & _source_sops(series)


def _source_sops(series) -> set[str]:
    return {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
            for f in series.iterdir()}


def test_a_ct_series_is_refused_for_mri2ct_and_series_is_passed_on(tmp_path, mridir,
                                                                   mr_weights):
    res = run("--weights", str(mr_weights), "--in", str(mridir / "ct"), "--out",
              str(tmp_path / "x.nii.gz"))
    assert res.exit_code == 3 and "CT" in res.output
    uid = pydicom.dcmread(next((mridir / "mr_t2").iterdir()),
                          stop_before_pixels=True).SeriesInstanceUID
    ok = run("--weights", str(mr_weights), "--in", str(mridir / "mr_t2"), "--series", uid,
             "--out", str(tmp_path / "y.nii.gz"))
    assert ok.exit_code == 0, ok.output
    bad = run("--weights", str(mr_weights), "--in", str(mridir / "mr_t2"), "--series",
              "1.2.3.4", "--out", str(tmp_path / "z.nii.gz"))
    assert bad.exit_code == 2 and not (tmp_path / "z.nii.gz").exists()  # no such series
