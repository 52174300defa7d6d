"""A real-anatomy bench end to end on constructed label maps (seconds), and the shipped spec's
maps (../shared/data/synthseg-head-labels; skipped where absent)."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medxlate.bench.report import floor_label
from medxlate.bench.runner import Hooks, run_bench
from medxlate.bench.spec import load_spec, with_labels
from tests.conftest import SHARED_DATA

MAPS = Path(os.environ.get("MEDXLATE_LABEL_MAPS", SHARED_DATA / "synthseg-head-labels"))
# Nested shells of a sphere head (radius in mm, SynthSeg label), outermost first.
SHELLS = [(54, 511), (51, 507), (48, 515), (45, 516), (42, 515), (39, 24), (32, 3), (24, 2)]

SPEC = """
direction: mr->ct
device: cpu
cohort:
  phantom: {labels: maps, seed: 1, train: 1, spacing: [4, 4, 4]}
  test: {seed: 2, subjects: 1, spacing: [4, 4, 4], contrast: both}
  preprocess: ["steps.resample.spacing_mm=[4,4,4]", "steps.slices.size=[32,32]"]
models:
  - {label: exact, model: unet-2.5d, weights: shipped}
"""


def write_map(path: Path, scale: float) -> None:
    shape, spacing = (56, 56, 56), 2.0
    grid = np.indices(shape).astype(float)
    r = np.sqrt(sum((g - (n - 1) / 2) ** 2 for g, n in zip(grid, shape))) * spacing / scale
    labels = np.zeros(shape, np.int16)
    for radius, label in SHELLS:
        labels[r < radius] = label
    nib.save(nib.Nifti1Image(labels, np.diag([spacing] * 3 + [1.0])), str(path))


def exact_synthesize(req) -> None:
    """A 'model' that returns the reference CT of the input's subject (on the MR grid)."""
    shutil.copyfile(Path(req.inputs).parent / "ct_on_mr.nii.gz", req.out)


def load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj, np.float64)


def test_real_anatomy_bench_scores_each_contrast_with_its_own_references(tmp_path,
                                                                         monkeypatch):
    (tmp_path / "maps").mkdir()
    write_map(tmp_path / "maps" / "a.nii.gz", 1.0)     # 2 maps: "a" trains, "b" is held out
    write_map(tmp_path / "maps" / "b.nii.gz", 0.9)
    (tmp_path / "b.yaml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)                         # labels: maps, from here
    work = tmp_path / "W"
    result = run_bench(load_spec("b.yaml"), work, echo=lambda line: None,
                       hooks=Hooks(synthesize=exact_synthesize))

    # held-out anatomy only from the held-out map, training only from the training map
    held = work / "cohort" / "test" / "head-000"
    assert json.loads((held / "truth.json").read_text())["source"]["label_map"] == "b.nii.gz"
    trained = work / "cohort" / "train" / "head-000"
    assert json.loads((trained / "truth.json").read_text())["source"]["label_map"] == "a.nii.gz"
    # one training dataset per contrast, made of that contrast's MR
    for c in ("t1", "t2"):
        rows = list(csv.DictReader((work / "cohort" / f"train-{c}.csv").open()))
        assert [Path(r["mr"]).name for r in rows] == [f"mr_{c}.nii.gz"]

    assert result["test_subjects"] == ["head-000"]        # once, whatever the contrasts
    rows = {r["contrast"]: r for r in result["rows"]}
    assert set(rows) == {"t1", "t2"}
    for row in rows.values():                           # the exact 'model': perfect figures
        m = row["metrics"]
        assert m["mae"] == 0.0 and m["bone_dice_300"] == 1.0 and m["air_mae"] == 0.0
        ref = load(held / "ct_on_mr.nii.gz")
        brain = (load(held / "labels_source.nii.gz") >= 2) & (
            load(held / "labels_source.nii.gz") <= 60)
        assert m["brain_over_300_pct"] == pytest.approx(100 * np.mean(ref[brain] > 300))
    refs = {(r["contrast"], r["label"]): r for r in result["references"]}
    fits = {c: json.loads((work / "references" / f"mri2ct-{c}" / "fit.json").read_text())
            for c in ("t1", "t2")}
    # each contrast's constant: the training CT's median in that contrast's dataset body
    # (preprocess draws the body from the MR too); another MR contrast -> another map
    for c in ("t1", "t2"):
        subject = work / "cohort" / f"dataset-{c}" / "subjects" / "head-000"
        body = load(subject / "mask.nii.gz") > 0
        assert fits[c]["constant"] == pytest.approx(np.median(load(subject / "ct.nii.gz")[body]))
    assert fits["t1"]["map"]["medians"] != fits["t2"]["map"]["medians"]
    for c in ("t1", "t2"):
        const = refs[(c, "constant")]["metrics"]
        # a constant body median (< 300 HU) draws no bone: Dice 0, no brain above 300 HU,
        # and in the reference air it is off by |constant - air|
        assert const["bone_dice_300"] == 0.0 and const["brain_over_300_pct"] == 0.0
        ref, mask = load(held / "ct_on_mr.nii.gz"), load(held / "mask.nii.gz") > 0
        air = mask & (ref < -400)
        assert const["air_mae"] == pytest.approx(
            np.mean(np.abs(fits[c]["constant"] - ref[air])), rel=1e-5)
        # the floor of the shipped weights' 2 mm grid (4 mm -> 2 mm -> 4 mm is exact here)
        floor = refs[(c, floor_label(rows[c]["grid"]["spacing_mm"]))]["metrics"]["mae"]
        assert floor == pytest.approx(0.0, abs=1e-3) and rows[c]["above_floor"] == -floor
    # the tables: one per contrast, with the anatomy columns; the CSV has them too
    md = (work / "bench.md").read_text()
    assert "## mr->ct, T1w MR" in md and "## mr->ct, T2w MR" in md
    assert "| Dice > 300 HU | brain > 300 HU (%) | MAE in air (HU) |" in md
    lines = list(csv.DictReader((work / "bench.csv").open()))
    fl = floor_label(rows["t1"]["grid"]["spacing_mm"])
    assert [(r["contrast"], r["label"]) for r in lines] == [
        ("t1", "exact"), ("t2", "exact"), ("t1", "constant"), ("t1", "intensity-map"),
        ("t1", fl), ("t2", "constant"), ("t2", "intensity-map"), ("t2", fl)]
    assert float(lines[0]["bone_dice_300"]) == 1.0


@pytest.mark.skipif(not MAPS.is_dir(), reason=f"{MAPS} absent (the 20 SynthSeg head label maps "
                    "of ../shared/data; MEDXLATE_LABEL_MAPS points elsewhere)")
def test_shipped_spec_holds_out_maps_17_to_20():
    from medxlate.bench.phantoms import map_names

    ph = with_labels(load_spec("real-anatomy"), MAPS).cohort["phantom"]
    assert map_names(ph, "held-out") == [f"training_seg_{i}" for i in (17, 18, 19, 20)]
    assert map_names(ph, "train") == [f"training_seg_{i:02d}" for i in range(1, 17)]
