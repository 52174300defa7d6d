"""synthesize --source/--target: modality tags, aliases and refusals (exit codes)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
from typer.testing import CliRunner

from medxlate.cli.main import app
from tests.synth.conftest import phantom_mr, write_nifti

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["synthesize", "--model", "pix2pix", "--quiet", *args])


def test_named_contrast_and_alias_give_the_same_sct(tmp_path, p2p_weights):
    src = write_nifti(tmp_path / "mr.nii.gz", phantom_mr(), np.diag([1.5, 1.5, 2.0, 1.0]))
    a = run("--weights", str(p2p_weights), "--in", str(src), "--out", str(tmp_path / "a.nii.gz"),
            "--source", "t1", "--target", "ct", "--report", str(tmp_path / "a.json"))
    b = run("--weights", str(p2p_weights), "--in", str(src), "--out", str(tmp_path / "b.nii.gz"),
            "--direction", "mri2ct")
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    np.testing.assert_array_equal(np.asarray(nib.load(tmp_path / "a.nii.gz").dataobj),
                                  np.asarray(nib.load(tmp_path / "b.nii.gz").dataobj))
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["translation"] == {"source": "t1", "target": "ct"}
    assert report["direction"] == "mri2ct"


def test_translations_the_weights_did_not_learn_are_usage_errors(tmp_path, p2p_weights):
    src = write_nifti(tmp_path / "mr.nii.gz", phantom_mr(), np.diag([1.5, 1.5, 2.0, 1.0]))
    common = ("--weights", str(p2p_weights), "--in", str(src))
    cases = {("--source", "t1", "--target", "t2"): "does not translate t1->t2",
             ("--target", "t2"): "translate mr->ct only, not ct->t2",
             ("--source", "pet"): "unknown source modality",
             ("--direction", "ct2mri"): "translate mr->ct only",  # these weights are mri2ct
             ("--direction", "mri2ct", "--source", "ct"): "contradicts"}
    for extra, words in cases.items():
        out = tmp_path / f"{'_'.join(extra)}.nii.gz"
        res = run(*common, "--out", str(out), *extra)
        assert res.exit_code == 2, (extra, res.output)
        assert words in res.output, (extra, res.output)
        assert not out.exists()
