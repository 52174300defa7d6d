"""--fold: a seeded split by subject, disjoint and covering, stored in the run folder; the
plan written beside it; bad plan overrides refused with one line and exit code 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.errors import UsageError
from medxlate.train.folds import FoldView, fold_split
from tests.train.conftest import make_dataset

TINY = ["--set", "filters=[4,8,8]", "--set", "progress=false", "--set", "log_every=1",
        "--set", "checkpoint_every=1", "--device", "cpu", "--steps", "1", "--quiet"]


def test_fold_split_disjoint_covering_seeded():
    ids = [f"s{i:02d}" for i in range(23)]
    folds = fold_split(ids, 5, seed=3)
    flat = [i for f in folds for i in f]
    assert sorted(flat) == ids and len(flat) == len(set(flat))          # cover, disjoint
    assert sorted(len(f) for f in folds) == [4, 4, 5, 5, 5]
    assert fold_split(list(reversed(ids)), 5, seed=3) == folds           # order-free
    assert fold_split(ids, 5, seed=4) != folds                           # the seed matters
    with pytest.raises(UsageError):
        fold_split(ids[:3], 5, seed=0)


def test_fold_view_splits_train_and_val(tmp_path):
    from medxlate.preprocess.dataset import load_dataset

    root = make_dataset(tmp_path / "ds", splits=("train",) * 5 + ("val", "test"))
    view = FoldView(load_dataset(root), 2, 3, seed=0)
    val = {s["id"] for s in view.subjects("val")}
    train = {s["id"] for s in view.subjects("train")}
    assert val == set(view.folds[2]) and not val & train
    assert val | train == {f"sub-{i:03d}" for i in range(6)}
    assert [s["id"] for s in view.subjects("test")] == ["sub-006"]
    with pytest.raises(UsageError, match="choose 0 .. 2"):
        FoldView(load_dataset(root), 3, 3, seed=0)


def test_train_fold_writes_split_and_plan(tmp_path):
    root = make_dataset(tmp_path / "ds", splits=("train",) * 5 + ("val",))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--model", "unet-2.5d", "--data", str(root),
                                      "--out", str(out), "--fold", "1", *TINY])
    assert result.exit_code == 0, result.output
    folds = json.loads((out / "folds.json").read_text())
    assert folds["fold"] == 1 and folds["n_folds"] == 5
    assert folds["val"] == fold_split([f"sub-{i:03d}" for i in range(6)], 5, 0)[1]
    plan = json.loads((out / "plan.json").read_text())
    # 16x16 slices at 1 mm, slab 4 mm: k = 4 neighbours either side; batch = max_batch
    assert plan["patch_size"] == [16, 16] and plan["context"] == 4
    assert plan["batch_size"] == 8 and plan["subjects"] == 6 - len(folds["val"])
    info = CliRunner().invoke(app, ["info", str(out / "model.safetensors"), "--json"])
    assert json.loads(info.output)["plan"] == plan


@pytest.mark.parametrize("setting, words", [
    ("patch_size=[32,32]", "patch_size=[32, 32] is larger than the dataset's slices [16, 16]"),
    ("spacing_mm=[-1,1,1]", "every value must be positive"),
])
def test_bad_plan_override_one_line_exit_2(tmp_path, setting, words):
    root = make_dataset(tmp_path / "ds", splits=("train",) * 3)
    result = CliRunner().invoke(app, ["train", "--model", "unet-2.5d", "--data", str(root),
                                      "--out", str(tmp_path / "run"), *TINY, "--set", setting])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_unet_weights_fine_tune_into_the_any_contrast_model(tmp_path):
    """unet-2.5d weights start a unet-2.5d-any run (same family, same networks); with lr 0
    the result holds exactly the tensors read from the starting file."""
    import torch

    from medxlate.weights import load_checkpoint

    root = make_dataset(tmp_path / "ds", splits=("train",) * 5 + ("val",))
    base = tmp_path / "base"
    ok = CliRunner().invoke(app, ["train", "--model", "unet-2.5d", "--data", str(root),
                                  "--out", str(base), *TINY])
    assert ok.exit_code == 0, ok.output
    src = base / "model.safetensors"
    # the constructed dataset has no tissue labels, so the profile is switched off here
    ft = CliRunner().invoke(app, ["train", "--model", "unet-2.5d-any", "--data", str(root),
                                  "--out", str(tmp_path / "ft"), *TINY,
                                  "--set", "augment.profile=none", "--set", "lr=0",
                                  "--set", f"init_weights={src}"])
    assert ft.exit_code == 0, ft.output
    before, _ = load_checkpoint(src)
    after, meta = load_checkpoint(tmp_path / "ft" / "model.safetensors")
    assert meta.model == "unet-2.5d-any"
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # another family's checkpoint is still refused, with one line and exit 2
    bad = CliRunner().invoke(app, ["train", "--model", "pix2pix", "--data", str(root),
                                   "--out", str(tmp_path / "bad"), "--device", "cpu",
                                   "--steps", "1", "--quiet", "--set", "slice_size=[16,16]",
                                   "--set", f"init_weights={src}"])
    assert bad.exit_code == 2 and "a unet-2.5d checkpoint, not pix2pix" in bad.output
