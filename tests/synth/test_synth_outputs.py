"""synthesize never writes an input, never reuses a path twice, never deletes foreign files."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.io.dicom_write import write_dicom_series
from medxlate.io.volume import Volume
from tests.synth.conftest import phantom_mr, write_nifti

runner = CliRunner()
AFF = np.diag([1.5, 1.5, 2.0, 1.0])


def run(*args: str):
    return runner.invoke(app, ["synthesize", "--quiet", "--model", "pix2pix", *args])


def _one_line(res, code: int, *words: str) -> None:
    assert res.exit_code == code, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medxlate: error: "), res.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_output_equal_to_the_input_is_refused_and_the_input_kept(tmp_path, p2p_weights):
    mr = write_nifti(tmp_path / "mr.nii.gz", phantom_mr((24, 24, 4)), AFF)
    before = mr.read_bytes()
    for out in (mr, tmp_path / "sub" / ".." / "mr.nii.gz"):
        res = run("--weights", str(p2p_weights), "--in", str(mr), "--out", str(out),
                  "--overwrite")
        _one_line(res, 2, "is the input")
    assert mr.read_bytes() == before


def test_uncertainty_equal_to_out_is_refused_before_any_work(tmp_path):
    mr = write_nifti(tmp_path / "mr.nii.gz", phantom_mr((24, 24, 4)), AFF)
    out = tmp_path / "sct.nii.gz"
    # the weights do not exist: a refusal with exit 2 (not 5) shows nothing was loaded
    res = run("--weights", str(tmp_path / "absent.safetensors"), "--in", str(mr), "--out",
              str(out), "--samples", "2", "--uncertainty", str(out))
    _one_line(res, 2, "--uncertainty", "is also --out")
    res = run("--weights", str(tmp_path / "absent.safetensors"), "--in", str(mr), "--out",
              str(out), "--report", str(mr))
    _one_line(res, 2, "--report", "is the input")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mr.nii.gz"]


def test_report_over_the_weights_is_refused(tmp_path, p2p_weights):
    mr = write_nifti(tmp_path / "mr.nii.gz", phantom_mr((24, 24, 4)), AFF)
    before = p2p_weights.read_bytes()
    res = run("--weights", str(p2p_weights), "--in", str(mr), "--out",
              str(tmp_path / "sct.nii.gz"), "--report", str(p2p_weights))
    _one_line(res, 2, "--report", "is the input")
    assert p2p_weights.read_bytes() == before and not (tmp_path / "sct.nii.gz").exists()


def _mr_series(folder):
    write_dicom_series(Volume(phantom_mr((24, 24, 4)), AFF, "MR"), folder)
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_dicom_input_folder_is_never_an_output(tmp_path, p2p_weights):
    series = tmp_path / "mr_series"
    before = _mr_series(series)
    res = run("--weights", str(p2p_weights), "--in", str(series), "--out", str(series),
              "--out-format", "dicom", "--overwrite")
    _one_line(res, 2, "is the input")
    res = run("--weights", str(p2p_weights), "--in", str(series), "--out",
              str(series / "sct.nii.gz"))
    _one_line(res, 2, "inside the input series folder")
    assert {p.name: p.read_bytes() for p in series.iterdir()} == before


def test_dicom_overwrite_keeps_foreign_files(tmp_path, p2p_weights):
    mr = write_nifti(tmp_path / "mr.nii.gz", phantom_mr((24, 24, 4)), AFF)
    out = tmp_path / "sct_series"
    args = ("--weights", str(p2p_weights), "--in", str(mr), "--out", str(out),
            "--out-format", "dicom")
    assert run(*args).exit_code == 0
    assert len(list(out.glob("IM*.dcm"))) == 4
    (out / "plan.txt").write_text("the physicist's notes")
    (out / "RTSTRUCT").mkdir()
    res = run(*args, "--overwrite")
    _one_line(res, 4, "RTSTRUCT/", "plan.txt", "did not write")
    assert (out / "plan.txt").read_text() == "the physicist's notes"
    assert len(list(out.glob("IM*.dcm"))) == 4
    (out / "plan.txt").unlink()
    (out / "RTSTRUCT").rmdir()
    assert run(*args, "--overwrite").exit_code == 0
