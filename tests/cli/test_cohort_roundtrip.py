"""Issue 10: the cohort round trip a physicist scripts, with no glue between the commands.

    medxlate phantom --out C ...
    medxlate synthesize --in C --out P ...
    medxlate evaluate --pred P --ref C --fail-if ...

The oracle for the scores is a direct numpy computation of the MAE from the written files.
"""

from __future__ import annotations

import json
import shlex

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from tests.synth.conftest import make_checkpoint, phantom_mr

runner = CliRunner()

SCRIPT = """
medxlate phantom --out {C} --subjects 2 --size 32 32 16 --seed 3
medxlate synthesize --model pix2pix --weights {W} --in {C} --out {P} --quiet
medxlate evaluate --pred {P} --ref {C} --out {R} --fail-if "mae>4000"
"""


def _run(line: str):
    argv = shlex.split(line)
    assert argv[0] == "medxlate"
    return runner.invoke(app, argv[1:])


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    # Trained at 6 mm so that the coarse phantom is translated in a fraction of a second.
    return make_checkpoint(tmp_path_factory.mktemp("w") / "p2p.safetensors",
                           data={"spacing_mm": [6.0, 6.0, 6.0], "slice_axis": 2})


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory, weights):
    root = tmp_path_factory.mktemp("rt")
    paths = {"C": root / "C", "P": root / "P", "R": root / "report.json", "W": weights}
    results = [_run(line.format(**paths)) for line in SCRIPT.strip().splitlines()]
    return paths, results


def test_three_commands_run_without_glue(roundtrip):
    paths, results = roundtrip
    assert [r.exit_code for r in results] == [0, 0, 0], [r.output for r in results]
    written = sorted(p.relative_to(paths["P"]).as_posix() for p in paths["P"].rglob("*.nii.gz"))
    assert written == ["brain-000/sct.nii.gz", "brain-001/sct.nii.gz"]
    assert "C/brain-000/mr.nii.gz -> " in results[1].stdout.replace(str(paths["C"].parent) + "/", "")


def test_evaluate_pairs_with_the_registered_ct_and_its_mask(roundtrip):
    paths, _ = roundtrip
    report = json.loads(paths["R"].read_text())
    assert [s["id"] for s in report["subjects"]] == ["brain-000", "brain-001"]
    for s in report["subjects"]:
        assert s["ref"].endswith(f"{s['id']}/ct_on_mr.nii.gz")  # not the CT on its own grid
        assert s["mask"].endswith(f"{s['id']}/mask.nii.gz")
        # Oracle: MAE inside the phantom's mask, straight from the files.
        pred = nib.load(paths["P"] / s["id"] / "sct.nii.gz").get_fdata()
        ref = nib.load(paths["C"] / s["id"] / "ct_on_mr.nii.gz").get_fdata()
        mask = nib.load(paths["C"] / s["id"] / "mask.nii.gz").get_fdata() > 0.5
        assert s["metrics"]["mae"] == pytest.approx(np.abs(pred - ref)[mask].mean(), rel=1e-5)


def test_gate_failure_and_csv_input(roundtrip):
    paths, _ = roundtrip
    gate = _run(f"medxlate evaluate --pred {paths['P']} --ref {paths['C']} --fail-if 'mae>1'")
    assert gate.exit_code == 6
    # The cohort CSV written by phantom is an input too: ids name the outputs, paths are
    # relative to the CSV, the id column is not read as paths.
    out = paths["C"].parent / "P_csv"
    res = _run(f"medxlate synthesize --model pix2pix --weights {paths['W']} "
               f"--in {paths['C'] / 'cohort.csv'} --out {out} --quiet")
    assert res.exit_code == 0, res.output
    for sid in ("brain-000", "brain-001"):
        a = nib.load(out / sid / "sct.nii.gz").get_fdata()
        b = nib.load(paths["P"] / sid / "sct.nii.gz").get_fdata()
        np.testing.assert_array_equal(a, b)  # same input, same default seed, same output


def test_layout_with_mha_and_missing_source(tmp_path, weights):
    import SimpleITK as sitk

    cohort = tmp_path / "synthrad"
    for sid in ("1BA001", "1BA002"):
        (cohort / sid).mkdir(parents=True)
    img = sitk.GetImageFromArray(phantom_mr((20, 20, 8)).transpose(2, 1, 0).copy())
    img.SetSpacing((6.0, 6.0, 6.0))
    sitk.WriteImage(img, str(cohort / "1BA001" / "mr.mha"))
    sitk.WriteImage(img, str(cohort / "1BA002" / "ct.mha"))  # no MR: that subject fails alone
    res = runner.invoke(app, ["synthesize", "--model", "pix2pix", "--weights", str(weights),
                              "--in", str(cohort), "--out", str(tmp_path / "P"), "--quiet"])
    assert res.exit_code == 8, res.output
    assert (tmp_path / "P" / "1BA001" / "sct.nii.gz").is_file()
    assert not (tmp_path / "P" / "1BA002").exists()
    assert "subject 1BA002: no mr image" in res.stderr


def _nifti(path, origin, shape=(20, 20, 10), value=0.0):
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = origin
    nib.save(nib.Nifti1Image(np.full(shape, value, np.float32), aff), str(path))
    return path


def test_refuses_a_reference_that_barely_overlaps(tmp_path):
    pred = _nifti(tmp_path / "sct.nii.gz", (0, 0, 0), value=100.0)
    # 40 x 40 x 20 mm boxes; the reference is shifted by 32 mm in x: 20 % overlap.
    far = _nifti(tmp_path / "far.nii.gz", (32, 0, 0), shape=(20, 20, 10), value=0.0)
    res = runner.invoke(app, ["evaluate", "--pred", str(pred), "--ref", str(far),
                              "--resample-to-ref"])
    assert res.exit_code == 3
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "barely overlap" in lines[0], res.stderr
    # Shifted by 4 mm (90 % overlap): resampled and scored.
    near = _nifti(tmp_path / "near.nii.gz", (4, 0, 0), value=0.0)
    (tmp_path / "m.nii.gz").write_bytes((tmp_path / "near.nii.gz").read_bytes())
    mask = _nifti(tmp_path / "mask.nii.gz", (4, 0, 0), value=1.0)
    ok = runner.invoke(app, ["evaluate", "--pred", str(pred), "--ref", str(near), "--mask",
                             str(mask), "--resample-to-ref", "--out", str(tmp_path / "r.json")])
    assert ok.exit_code == 0, ok.output
    mae = json.loads((tmp_path / "r.json").read_text())["subjects"][0]["metrics"]["mae"]
    # 18 of 20 x-columns of the reference lie inside the prediction (100 HU), 2 get -1024.
    assert mae == pytest.approx((18 * 100 + 2 * 1024) / 20, rel=1e-6)


def test_one_subject_folder_is_one_subject(roundtrip, tmp_path):
    paths, _ = roundtrip
    res = _run(f"medxlate synthesize --model pix2pix --weights {paths['W']} "
               f"--in {paths['C'] / 'brain-001'} --out {tmp_path / 'P'} --quiet")
    assert res.exit_code == 0, res.output
    # Only the MR was translated (not ct, ct_on_mr, mask, labels...), named by the subject id.
    assert [p.relative_to(tmp_path / "P").as_posix() for p in (tmp_path / "P").rglob("*.gz")] \
        == ["brain-001/sct.nii.gz"]
    np.testing.assert_array_equal(
        nib.load(tmp_path / "P" / "brain-001" / "sct.nii.gz").get_fdata(),
        nib.load(paths["P"] / "brain-001" / "sct.nii.gz").get_fdata())
