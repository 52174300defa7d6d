"""Finding pairs (folders, CSV, dataset folder), geometry checks, resampling, synthetic MR."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.errors import InputError, UsageError
from medxlate.evaluate.geometry import check_same_grid, resample_to
from medxlate.evaluate.pairs import find_cases
from medxlate.io import Volume, write_volume
from tests.evaluate.eval_reference import ct_like, ref_ssim

runner = CliRunner()
AFFINE = np.diag([2.0, 2.0, 3.0, 1.0])


def _dataset(root, ids=("sub-000", "sub-001"), zscore=False):
    """A minimal preprocess dataset folder (docs/dataset-format.md) with CT, MR and mask."""
    subjects = []
    for n, sid in enumerate(ids):
        _, ct, body = ct_like((24, 22, 12), seed=n)
        folder = root / "subjects" / sid
        mr = np.where(body, 300.0 + 0.2 * ct, 5.0).astype(np.float32)
        write_volume(Volume(ct, AFFINE, "CT"), folder / "ct.nii.gz")
        write_volume(Volume(mr, AFFINE, "MR"), folder / "mr.nii.gz")
        write_volume(Volume(body.astype(np.float32), AFFINE), folder / "mask.nii.gz")
        norm = {"mean": 310.0, "std": 20.0} if zscore else {"low": 250.0, "high": 550.0}
        subjects.append({"id": sid, "split": "test", "modalities": ["mr", "ct"],
                         "shape": [24, 22, 12], "mr_norm": norm})
    info = {"format": "medxlate-dataset/1", "medxlate": "0.1.0", "region": "brain",
            "paired": True, "normalisation": {
                "ct": {"kind": "window", "low": -1024.0, "high": 3000.0},
                "mr": {"kind": "zscore"} if zscore else
                      {"kind": "percentile", "low_pct": 0.5, "high_pct": 99.5}},
            "subjects": subjects}
    (root / "dataset.json").write_text(json.dumps(info))
    return root


def test_dataset_folder_as_reference_ct(tmp_path):
    ds = _dataset(tmp_path / "ds")
    preds = tmp_path / "pred"
    _, ct, body = ct_like((24, 22, 12), seed=0)
    write_volume(Volume(np.where(body, ct - 7.0, ct), AFFINE, "CT"), preds / "sub-000.nii.gz")
    cases, unmatched = find_cases(preds, ds)
    assert [c.id for c in cases] == ["sub-000"] and unmatched == ["sub-001"]
    assert cases[0].mask.name == "mask.nii.gz" and cases[0].source.name == "mr.nii.gz"
    res = runner.invoke(app, ["evaluate", "--pred", str(preds), "--ref", str(ds), "--out",
                              str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "r.json").read_text())["subjects"][0]
    assert record["metrics"]["me"] == pytest.approx(-7.0, abs=1e-4)
    assert record["mask_origin"] == "dataset mask.nii.gz"
    assert record["n_mask_voxels"] == int(body.sum())


def test_synthetic_mr_uses_dataset_normalisation(tmp_path):
    ds = _dataset(tmp_path / "ds")
    preds = tmp_path / "pred"
    _, ct, body = ct_like((24, 22, 12), seed=1)
    mr = np.where(body, 300.0 + 0.2 * ct, 5.0).astype(np.float32)
    smr = np.where(body, mr + 30.0, mr).astype(np.float32)  # +30 units = +0.2 in [-1, 1]
    write_volume(Volume(smr, AFFINE, "MR"), preds / "sub-001.nii.gz")
    res = runner.invoke(app, ["evaluate", "--modality", "MR", "--pred", str(preds), "--ref",
                              str(ds), "--out", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "r.json").read_text())
    record = report["subjects"][0]
    assert record["normalisation"]["params"] == {"low": 250.0, "high": 550.0}
    assert record["range"] == [-1.0, 1.0]
    # normalised: x = 2 (clip(v, 250, 550) - 250) / 300 - 1, so +30 inside the window is +0.2
    def x(v):
        return 2 * (np.clip(v, 250, 550) - 250) / 300 - 1

    expected_mae = np.abs(x(smr) - x(mr))[body].mean()
    assert record["metrics"]["mae"] == pytest.approx(expected_mae, abs=1e-5)
    assert "mae_bone" not in record["metrics"]
    expected_ssim = ref_ssim(x(smr).astype(np.float32), x(mr).astype(np.float32), body, -1, 1)[0]
    assert record["metrics"]["ssim"] == pytest.approx(expected_ssim, abs=1e-6)
    assert "normalisation" in report["definitions"]
    assert "[-1, 1]" in report["definitions"]["psnr"] and "R = 2" in report["definitions"]["psnr"]
    res = runner.invoke(app, ["evaluate", "--modality", "MR", "--pred", str(preds), "--ref",
                              str(ds), "--hu-range", "-1000", "2000"])
    assert res.exit_code == 2


def test_csv_and_option_errors(tmp_path):
    bad = tmp_path / "pairs.csv"
    bad.write_text("id,prediction,ref\na,b,c\n")
    with pytest.raises(InputError, match="missing column"):
        find_cases(None, None, pairs=bad)
    with pytest.raises(UsageError):
        find_cases(tmp_path, None, pairs=bad)
    with pytest.raises(UsageError):
        find_cases(None, None)
    res = runner.invoke(app, ["evaluate", "--pairs", str(bad)])
    assert res.exit_code == 3 and "missing column" in res.output


def test_geometry_error_names_what_differs():
    a = Volume(np.zeros((8, 8, 8), np.float32), AFFINE, "CT")
    b = Volume(np.zeros((8, 8, 8), np.float32), np.diag([2.0, 2.0, 2.5, 1.0]), "CT")
    with pytest.raises(InputError, match=r"pred\.nii\.gz .*spacing 2x2x3 mm.* and ref\.nii\.gz "
                                         r".*spacing 2x2x2\.5 mm.* differ in spacing"):
        check_same_grid(a, b, "pred.nii.gz", "ref.nii.gz")
    flipped = Volume(np.zeros((8, 8, 8), np.float32), np.diag([-2.0, 2.0, 3.0, 1.0]), "CT")
    with pytest.raises(InputError, match="orientation"):
        check_same_grid(flipped, a, "p", "r")


def test_resample_to_reference_is_exact_on_a_linear_ramp():
    # reference grid 2 mm; prediction on a 4 mm grid covering the same world box
    i, j, k = np.meshgrid(np.arange(20), np.arange(18), np.arange(10), indexing="ij")
    ref = Volume((10.0 * i + 3.0 * j - 2.0 * k).astype(np.float32), AFFINE, "CT")
    coarse_affine = np.diag([4.0, 4.0, 3.0, 1.0])
    ci, cj, ck = np.meshgrid(np.arange(10), np.arange(9), np.arange(10), indexing="ij")
    coarse = Volume((20.0 * ci + 6.0 * cj - 2.0 * ck).astype(np.float32), coarse_affine, "CT")
    out = resample_to(coarse, ref)
    assert out.same_grid(ref)
    inside = (i <= 18) & (j <= 16)
    np.testing.assert_allclose(out.array[inside], ref.array[inside], atol=1e-3)
    assert (out.array[~inside] == -1024.0).all()


def test_synthetic_mr_percentiles_without_dataset_and_perfect_prediction(tmp_path):
    _, ct, body = ct_like((30, 28, 14), seed=2)
    mr = np.where(body, 400.0 + 0.1 * ct, 3.0).astype(np.float32)
    write_volume(Volume(mr, AFFINE, "MR"), tmp_path / "mr.nii.gz")
    write_volume(Volume(body.astype(np.float32), AFFINE), tmp_path / "mask.nii.gz")
    res = runner.invoke(app, ["evaluate", "--modality", "MR", "--pred", str(tmp_path / "mr.nii.gz"),
                              "--ref", str(tmp_path / "mr.nii.gz"), "--mask",
                              str(tmp_path / "mask.nii.gz"), "--mr-percentiles", "1", "99",
                              "--out", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv")])
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "r.json").read_text())["subjects"][0]
    low, high = np.percentile(mr[body], [1, 99])
    assert record["normalisation"]["spec"] == {"kind": "percentile", "low_pct": 1.0,
                                               "high_pct": 99.0}
    assert record["normalisation"]["params"]["low"] == pytest.approx(low, rel=1e-5)
    assert record["normalisation"]["params"]["high"] == pytest.approx(high, rel=1e-5)
    m = record["metrics"]
    assert (m["mae"], m["me"], m["nmse"], m["psnr"]) == (0.0, 0.0, 0.0, "inf")
    assert m["ssim"] == pytest.approx(1.0, abs=1e-12)
    row = (tmp_path / "r.csv").read_text().splitlines()[1].split(",")
    assert row[0] == "mr" and row[3] == "inf"


def test_synthetic_mr_zscore_dataset_uses_reference_range(tmp_path):
    ds = _dataset(tmp_path / "ds", zscore=True)
    preds = tmp_path / "pred"
    z_ranges = []
    for n, sid in enumerate(("sub-000", "sub-001")):
        _, ct, body = ct_like((24, 22, 12), seed=n)
        mr = np.where(body, 300.0 + 0.2 * ct, 5.0).astype(np.float32)
        write_volume(Volume(np.where(body, mr - 10.0, mr), AFFINE, "MR"), preds / f"{sid}.nii.gz")
        z = (mr[body] - 310.0) / 20.0
        z_ranges.append([z.min(), z.max()])
    res = runner.invoke(app, ["evaluate", "--modality", "MR", "--pred", str(preds), "--ref",
                              str(ds), "--out", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "r.json").read_text())
    for record, z_range in zip(report["subjects"], z_ranges):
        assert record["range"] == pytest.approx(z_range, abs=1e-5)
        assert record["metrics"]["me"] == pytest.approx(-0.5, abs=1e-5)  # -10 units / std 20
    assert "per subject" in report["definitions"]["ssim"]
