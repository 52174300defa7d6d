"""Whole-volume validation through the synthesize path, checked against `medxlate synthesize`
of best.safetensors and numpy/scikit-image metrics of its output (issue 22)."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.weights import read_meta

runner = CliRunner()
TINY_PIX2PIX = {"ngf": 4, "ndf": 4, "n_downs": 4, "slice_size": [16, 16], "d_layers": 2,
                "progress": False, "val_every": 3, "val_slices": 2, "batch_size": 4,
                "checkpoint_every": 3, "ema": 0.5, "val_volumes": 2}


def _ok(args):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r


def _csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def phantom_dataset(tmp_path_factory):
    """4 procedural heads, 2 of them validation subjects with whole volumes on an 8 mm grid."""
    root = tmp_path_factory.mktemp("vv")
    _ok(["phantom", "--out", root / "cohort", "--subjects", 4, "--region", "brain",
         "--size", 24, 24, 20, "--spacing", 4, 4, 4, "--seed", 1])
    _ok(["preprocess", "--cohort", root / "cohort", "--out", root / "ds", "--skip", "register",
         "--set", "steps.resample.spacing_mm=[8,8,8]", "--set", "steps.slices.size=[16,16]",
         "--set", "steps.crop.margin_mm=8", "--set", "split.fractions=[0.5,0.5,0.0]"])
    return root / "ds"


@pytest.fixture(scope="module")
def pix2pix_run(phantom_dataset, tmp_path_factory):
    from medxlate.synth.validation import VolumeValidation
    from medxlate.train import train

    out = tmp_path_factory.mktemp("runs") / "p2p"
    result = train("pix2pix", phantom_dataset, out, config="demo", overrides=TINY_PIX2PIX,
                   steps=9, device="cpu", seed=0, volume_validator=VolumeValidation)
    return result


def _masked_ssim(pred, ref, mask, low, high):
    """SynthRAD2023's masked SSIM, written with scikit-image (an oracle independent of
    medxlate.evaluate.ssim): clip, background to `low`, skimage's full SSIM map (7x7x7
    window, sample covariance), mean over mask voxels 3 or more voxels from the border."""
    from skimage.metrics import structural_similarity

    a = np.where(mask, np.clip(pred, low, high), low) - low
    b = np.where(mask, np.clip(ref, low, high), low) - low
    _, full = structural_similarity(a.astype(np.float64), b.astype(np.float64),
                                    data_range=high - low, win_size=7, full=True)
    core = np.zeros_like(mask)
    core[3:-3, 3:-3, 3:-3] = True
    return float(full[mask & core].mean())


def test_val_csv_holds_volume_figures_at_each_validation(pix2pix_run):
    rows = _csv(pix2pix_run.run_dir / "val.csv")
    assert [int(r["step"]) for r in rows] == [3, 6, 9]
    for r in rows:
        assert int(float(r["vol_volumes"])) == 2
        assert 0 < float(r["vol_mae_hu"]) < 3000 and float(r["vol_psnr"]) > 0
        assert -1 <= float(r["vol_ssim"]) <= 1
        assert float(r["val_mae_hu"]) > 0          # the slice figures stay beside them
    assert pix2pix_run.val["vol_volumes"] == 2


def test_volume_figures_equal_synthesize_of_best_plus_numpy(pix2pix_run, phantom_dataset,
                                                          tmp_path):
    out = pix2pix_run.run_dir
    meta = read_meta(out / "best.safetensors")
    best = meta.extra["best"]
    assert best["metric"] == "vol_mae_hu"
    rows = {int(r["step"]): r for r in _csv(out / "val.csv")}
    assert best["score"] == pytest.approx(min(float(r["vol_mae_hu"]) for r in rows.values()))
    row = rows[best["step"]]
    window = meta.normalisation["ct"]
    low, high = float(window["low"]), float(window["high"])
    maes, mes, psnrs, ssims = [], [], [], []
    for sid in ("brain-000", "brain-002"):                 # the two val subjects
        subject = phantom_dataset / "subjects" / sid
        sct = tmp_path / f"{sid}.nii.gz"
        _ok(["synthesize", "--model", "pix2pix", "--weights", out / "best.safetensors",
             "--in", subject / "mr.nii.gz", "--out", sct, "--device", "cpu"])
        pred = np.asarray(nib.load(sct).dataobj, np.float64)
        ref = np.asarray(nib.load(subject / "ct.nii.gz").dataobj, np.float64)
        mask = np.asarray(nib.load(subject / "mask.nii.gz").dataobj) > 0
        d = pred[mask] - ref[mask]
        maes.append(np.abs(d).mean())
        mes.append(d.mean())
        mse = np.mean((np.clip(pred[mask], low, high) - np.clip(ref[mask], low, high)) ** 2)
        psnrs.append(10 * np.log10((high - low) ** 2 / mse))
        ssims.append(_masked_ssim(pred, ref, mask, low, high))
    assert float(row["vol_mae_hu"]) == pytest.approx(np.mean(maes), rel=1e-5)
    assert float(row["vol_me_hu"]) == pytest.approx(np.mean(mes), rel=1e-5, abs=1e-3)
    assert float(row["vol_psnr"]) == pytest.approx(np.mean(psnrs), rel=1e-5)
    assert float(row["vol_ssim"]) == pytest.approx(np.mean(ssims), abs=1e-4)


def test_curves_png_is_drawn(pix2pix_run):
    png = pix2pix_run.run_dir / "curves.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_train_validates_whole_volumes(phantom_dataset, tmp_path):
    out = tmp_path / "cli"
    r = _ok(["train", "--model", "pix2pix", "--data", phantom_dataset, "--out", out,
             "--config", "demo", "--device", "cpu", "--steps", 2, "--val-every", 1,
             "--val-volumes", 1, "--set", "ngf=4", "--set", "ndf=4", "--set", "n_downs=4",
             "--set", "slice_size=[16,16]", "--set", "d_layers=2", "--quiet"])
    rows = _csv(out / "val.csv")
    assert [int(r["step"]) for r in rows] == [1, 2]
    assert all(int(float(r["vol_volumes"])) == 1 and float(r["vol_mae_hu"]) > 0 for r in rows)
    assert "best: " in r.stdout and (out / "best.safetensors").is_file()


def test_mr_target_scored_in_network_units(phantom_dataset, tmp_path):
    """CT -> MR: both volumes brought to network units by hand (numpy percentiles of the
    reference inside the mask; synthesize's 0..1000 scale for the synthetic MR)."""
    from medxlate.synth.validation import VolumeValidation
    from medxlate.train import train

    out = tmp_path / "ct2mr"
    result = train("pix2pix", phantom_dataset, out, config="demo",
                   overrides={**TINY_PIX2PIX, "direction": "ct2mri", "val_volumes": 1},
                   steps=3, device="cpu", seed=0, volume_validator=VolumeValidation)
    assert "vol_mae" in result.val and "vol_mae_hu" not in result.val
    subject = phantom_dataset / "subjects" / "brain-000"
    sct = tmp_path / "smr.nii.gz"
    _ok(["synthesize", "--model", "pix2pix", "--weights", out / "model.safetensors",
         "--in", subject / "ct.nii.gz", "--out", sct, "--device", "cpu"])
    mask = np.asarray(nib.load(subject / "mask.nii.gz").dataobj) > 0
    ref = np.asarray(nib.load(subject / "mr.nii.gz").dataobj, np.float64)
    low, high = np.percentile(ref[mask].astype(np.float32), [0.5, 99.5])
    ref_x = 2 * (np.clip(ref, low, high) - low) / (high - low) - 1
    pred_x = 2 * np.clip(np.asarray(nib.load(sct).dataobj, np.float64), 0, 1000) / 1000 - 1
    d = pred_x[mask] - ref_x[mask]
    assert result.val["vol_mae"] == pytest.approx(np.abs(d).mean(), rel=1e-4)
    assert result.val["vol_me"] == pytest.approx(d.mean(), rel=1e-4, abs=1e-5)
    mse = np.mean(d ** 2)
    assert result.val["vol_psnr"] == pytest.approx(10 * np.log10(4 / mse), rel=1e-4)


def test_named_source_contrast_finds_the_datasets_mr_volume(phantom_dataset):
    """A run trained with source=t1 on a dataset of one MR (subjects/<id>/mr.nii.gz) still
    validates whole volumes: the T1 input is the dataset's mr.nii.gz."""
    from medxlate.preprocess.dataset import load_dataset
    from medxlate.synth.validation import volume_subjects

    ds = load_dataset(phantom_dataset)
    plain = volume_subjects(ds, {"direction": "mri2ct"}, 2)
    named = volume_subjects(ds, {"direction": "mri2ct", "source": "t1", "target": "ct"}, 2)
    assert plain and named == plain
    assert all(s["source"].name == "mr.nii.gz" for s in named)


def test_unet_3d_validates_whole_volumes_equal_to_synthesize_of_best(tmp_path):
    """A 3D model (no slice validation) is scored on its whole validation volumes through the
    synthesize path: best.safetensors through `medxlate synthesize`, MAE by numpy."""
    root = tmp_path
    _ok(["phantom", "--out", root / "cohort", "--subjects", 3, "--region", "brain",
         "--size", 24, 24, 20, "--spacing", 4, 4, 4, "--seed", 2])
    _ok(["preprocess", "--cohort", root / "cohort", "--out", root / "ds", "--skip", "register",
         "--set", "steps.resample.spacing_mm=[8,8,8]", "--set", "steps.slices.size=[16,16]",
         "--set", "steps.volumes.enabled=true", "--set", "steps.volumes.size=[16,16,16]",
         "--set", "steps.crop.margin_mm=8", "--set", "split.fractions=[0.67,0.33,0.0]"])
    out = root / "run"
    _ok(["train", "--model", "unet-3d", "--data", root / "ds", "--out", out, "--device", "cpu",
         "--steps", 2, "--val-every", 1, "--val-volumes", 1, "--set", "filters=[4,8,8]",
         "--set", "patch_size=[8,8,8]", "--set", "checkpoint_every=1", "--quiet"])
    rows = {int(r["step"]): r for r in _csv(out / "val.csv")}
    assert sorted(rows) == [1, 2] and "val_mae_hu" not in rows[1]
    best = read_meta(out / "best.safetensors").extra["best"]
    assert best["metric"] == "vol_mae_hu"
    subjects = json.loads((root / "ds" / "dataset.json").read_text())["subjects"]
    val_id = next(s["id"] for s in subjects if s["split"] == "val")
    subject = root / "ds" / "subjects" / val_id
    sct = tmp_path / "sct.nii.gz"
    _ok(["synthesize", "--model", "unet-3d", "--weights", out / "best.safetensors",
         "--in", subject / "mr.nii.gz", "--out", sct, "--device", "cpu"])
    pred = np.asarray(nib.load(sct).dataobj, np.float64)
    ref = np.asarray(nib.load(subject / "ct.nii.gz").dataobj, np.float64)
    mask = np.asarray(nib.load(subject / "mask.nii.gz").dataobj) > 0
    assert float(rows[best["step"]]["vol_mae_hu"]) == pytest.approx(
        np.abs(pred[mask] - ref[mask]).mean(), rel=1e-5)
