"""Every command that writes files refuses (exit 2, one line) to write over an input."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app

runner = CliRunner()


def _nifti(path, value: float = 0.0):
    nib.save(nib.Nifti1Image(np.full((8, 8, 4), value, np.float32), np.eye(4)), path)
    return path


@pytest.fixture()
def files(tmp_path):
    _nifti(tmp_path / "mr.nii.gz", 300.0)
    _nifti(tmp_path / "ct.nii.gz", 40.0)
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "dataset.json").write_text("{}")
    (tmp_path / "gen.pth").write_bytes(b"not really a checkpoint")
    return tmp_path, {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}


@pytest.mark.parametrize("argv", [
    ["evaluate", "--pred", "{d}/mr.nii.gz", "--ref", "{d}/ct.nii.gz", "--out",
     "{d}/ct.nii.gz", "--overwrite"],
    ["evaluate", "--pred", "{d}/mr.nii.gz", "--ref", "{d}/ct.nii.gz", "--csv",
     "{d}/mr.nii.gz", "--overwrite"],
    ["preprocess", "--mri", "{d}/mr.nii.gz", "--ct", "{d}/ct.nii.gz", "--out",
     "{d}/mr.nii.gz", "--overwrite"],
    ["train", "--model", "pix2pix", "--data", "{d}/dataset", "--out", "{d}/dataset/."],
    ["weights", "import", "--from", "syndiff", "{d}/gen.pth", "--out", "{d}/gen.pth",
     "--overwrite"],
    ["convert", "{d}/ct.nii.gz", "{d}/ct.nii.gz", "--overwrite"],
], ids=["evaluate-out", "evaluate-csv", "preprocess", "train", "weights-import", "convert"])
def test_output_naming_an_input_is_a_usage_error(files, argv):
    folder, before = files
    res = runner.invoke(app, [a.format(d=folder) for a in argv])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medxlate: error: ")
    assert "is the input" in lines[0]
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_preprocess_refuses_inputs_where_it_writes_subjects(tmp_path):
    out = tmp_path / "ds"
    (out / "subjects" / "s1").mkdir(parents=True)
    mr = _nifti(out / "subjects" / "s1" / "mr.nii.gz", 300.0)
    ct = _nifti(tmp_path / "ct.nii.gz", 40.0)
    res = runner.invoke(app, ["preprocess", "--mri", str(mr), "--ct", str(ct), "--out",
                              str(out), "--overwrite"])
    assert res.exit_code == 2 and "holds the input" in res.stderr, res.output
