"""The engine end to end on a tiny dataset with a tiny ddpm: files, metadata, resume, seeds."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch
from conftest import TINY_DDPM, make_dataset

from medxlate.models.registry import get_spec
from medxlate.train import train
from medxlate.weights import load_checkpoint, read_meta


def _cfg(**kw):
    return {"base": "demo", **TINY_DDPM, **kw}


def _csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def run_a(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "a"
    result = train("ddpm", tiny_dataset, out, config=_cfg(), device="cpu")
    return result


def test_run_folder_and_checkpoint_metadata(run_a, tiny_dataset):
    out = run_a.run_dir
    assert run_a.steps == 4 and len(run_a.losses) == 4
    assert all(0.0 < row["loss"] < 10.0 for row in run_a.losses)
    rows = _csv(out / "train.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert float(rows[-1]["loss"]) == pytest.approx(run_a.losses[-1]["loss"])
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"] == "ddpm" and cfg["model_channels"] == 8 and cfg["steps"] == 4
    meta = read_meta(out / "model.safetensors")
    dataset = json.loads((tiny_dataset / "dataset.json").read_text())
    assert meta.model == "ddpm" and meta.config == cfg
    assert meta.normalisation == dataset["normalisation"]
    assert meta.data["slice_size"] == [16, 16] and meta.data["subjects"]["train"] == 2
    assert meta.extra["steps"] == 4 and meta.extra["hardware"]["world_size"] == 1
    # the final validation scored the 2 requested val slices, in HU
    assert run_a.val["val_slices"] == 2 and run_a.val["val_mae_hu"] > 0
    assert meta.extra["val"]["val_mae_hu"] == pytest.approx(run_a.val["val_mae_hu"])
    # keep_checkpoints=2: steps 2 and 4 remain, each a complete folder
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["step-00000002", "step-00000004"]
    for name in names:
        assert {p.name for p in (out / "checkpoints" / name).iterdir()} == {
            "model.safetensors", "state.safetensors", "state.json"}


def test_checkpoint_rebuilds_from_metadata_alone(run_a, tmp_path):
    tensors, meta = load_checkpoint(run_a.model_path)
    assert sorted({k.split(".")[0] for k in tensors}) == ["unet"]
    family = get_spec(meta.model).load_entry()

    def rebuilt(tensors, meta):
        nets = family.build(meta.config)
        nets["unet"].load_state_dict({k[5:]: v for k, v in tensors.items()}, strict=True)
        return nets

    nets = rebuilt(tensors, meta)
    source = torch.linspace(-1, 1, 2 * 16 * 16).reshape(2, 1, 16, 16)
    kw = {"config": meta.config, "sampler": "ddim", "steps": 5, "eta": 0.0}
    y1 = family.translate(nets, source, generator=torch.Generator().manual_seed(3), **kw)
    # the shipped weights are the EMA copy stored in the training state
    from safetensors.torch import load_file
    state = load_file(str(run_a.run_dir / "checkpoints" / "step-00000004" / "state.safetensors"))
    for key, value in tensors.items():
        assert torch.equal(value, state[f"ema.{key}"])
    # save -> load -> rebuild once more: identical outputs
    from medxlate.weights import save_checkpoint
    save_checkpoint(tmp_path / "copy.safetensors", tensors, meta)
    nets2 = rebuilt(*load_checkpoint(tmp_path / "copy.safetensors"))
    y2 = family.translate(nets2, source, generator=torch.Generator().manual_seed(3), **kw)
    assert y1.shape == (2, 1, 16, 16)
    assert torch.equal(y1, y2)


def test_resume_after_interruption_equals_uninterrupted(run_a, tmp_path):
    out = tmp_path / "b"
    shutil.copytree(run_a.run_dir, out)
    # simulate a run killed after its step-2 checkpoint
    shutil.rmtree(out / "checkpoints" / "step-00000004")
    (out / "model.safetensors").unlink()
    assert json.loads((out / "config.json").read_text())["steps"] == 4
    result = train("ddpm", _dataset_of(run_a), out, resume=True, device="cpu")
    assert [r["loss"] for r in result.losses] == [r["loss"] for r in run_a.losses[2:]]
    a, _ = load_checkpoint(run_a.model_path)
    b, meta = load_checkpoint(out / "model.safetensors")
    assert meta.extra["steps"] == 4
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [int(r["step"]) for r in _csv(out / "train.csv")] == [1, 2, 3, 4]


def _dataset_of(result):
    return read_meta(result.model_path).data["dataset"]


def test_resume_extends_step_count(tiny_dataset, tmp_path):
    out = tmp_path / "c"
    train("ddpm", tiny_dataset, out, config=_cfg(lr_schedule="constant"), steps=2, device="cpu")
    result = train("ddpm", tiny_dataset, out, resume=True, steps=3, device="cpu")
    assert result.steps == 3 and len(result.losses) == 1
    assert read_meta(out / "model.safetensors").extra["steps"] == 3
    assert [int(r["step"]) for r in _csv(out / "train.csv")] == [1, 2, 3]


def test_same_seed_same_loss_curve(tiny_dataset, tmp_path, run_a):
    again = train("ddpm", tiny_dataset, tmp_path / "s0", config=_cfg(), device="cpu")
    assert [r["loss"] for r in again.losses] == [r["loss"] for r in run_a.losses]
    other = train("ddpm", tiny_dataset, tmp_path / "s1", config=_cfg(), seed=1, device="cpu")
    assert [r["loss"] for r in other.losses] != [r["loss"] for r in run_a.losses]


def test_epochs_accumulation_and_2p5d(tmp_path):
    ds = make_dataset(tmp_path / "ds", splits=("train", "val"), n_slices=5)
    # 1 train subject, 5 kept slices, batch 2 -> 3 micro-batches per epoch; accumulate 2 ->
    # 2 cycles per epoch; 2 epochs -> 4 cycles
    result = train("ddpm", ds, tmp_path / "r", config=_cfg(context=1, accumulate=2,
                                                           batch_size=2), epochs=2,
                   device="cpu")
    assert result.steps == 4
    tensors, meta = load_checkpoint(result.model_path)
    # 2.5D with k=1: 1 noisy target channel + 3 source channels into the first conv
    assert tensors["unet.input_conv.weight"].shape[1] == 4
    assert meta.config["context"] == 1


def test_unusable_options(tiny_dataset, tmp_path):
    from medxlate.errors import InputError, OutputError, UsageError
    with pytest.raises(UsageError, match="amp=bf16"):
        train("ddpm", tiny_dataset, tmp_path / "x", config=_cfg(amp="bf16"), device="cpu")
    with pytest.raises(UsageError, match="lr_schedule"):
        train("ddpm", tiny_dataset, tmp_path / "y", config=_cfg(lr_schedule="step"))
    with pytest.raises(InputError, match="no checkpoint|config.json"):
        train("ddpm", tiny_dataset, tmp_path / "z", resume=True, device="cpu")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(OutputError):
        train("ddpm", tiny_dataset, tmp_path / "full", config=_cfg(), device="cpu")


def test_slice_size_larger_than_the_dataset_is_refused(tiny_dataset, tmp_path):
    from medxlate.errors import UsageError
    with pytest.raises(UsageError, match=r"slice_size \[32, 32\] exceeds .* \[16, 16\]"):
        train("ddpm", tiny_dataset, tmp_path / "x", config=_cfg(slice_size=[32, 32]),
              device="cpu")


def test_smaller_slice_size_trains_on_aligned_crops(tiny_dataset, tmp_path):
    from medxlate.preprocess.dataset import load_dataset
    from medxlate.train.config import resolve_config
    from medxlate.train.data import SliceData

    no_aug = {"flip_lr": 0.0, "flip_ap": 0.0, "affine": 0.0, "mr_jitter": 0.0}
    cfg = resolve_config(get_spec("ddpm"), _cfg(slice_size=[8, 12], augment=no_aug), {})
    ds = load_dataset(tiny_dataset)
    data = SliceData(ds, "train", cfg)
    sid, n = data.mr_centres[0]
    full = ds.shard(sid)
    crops = [data[(0, 0, seed)] for seed in range(6)]
    for item in crops:
        assert item["mr"].shape[-2:] == (8, 12) and item["mask"].shape[-2:] == (8, 12)
    # each crop is a window of the stored slice, MR/CT/mask cut at the same place
    mr, ct = (torch.from_numpy(full[k][n].astype("float32")) for k in ("mr", "ct"))
    for item in crops:
        hits = [(y, x) for y in range(16 - 8 + 1) for x in range(16 - 12 + 1)
                if torch.equal(mr[y:y + 8, x:x + 12], item["mr"][0])]
        assert hits and any(torch.equal(ct[y:y + 8, x:x + 12], item["ct"][0]) for y, x in hits)
    assert len({tuple(c["mr"].flatten()[:4].tolist()) for c in crops}) > 1   # seeds move it
    val = SliceData(ds, "val", {**cfg, "pairing": "paired"}, augment=False)
    vid, vn = val.mr_centres[0]
    centre = torch.from_numpy(ds.shard(vid)["mr"][vn, 4:12, 2:14].astype("float32"))
    assert torch.equal(val[(0, 0, 123)]["mr"][0], centre)
    result = train("ddpm", tiny_dataset, tmp_path / "crop", config=_cfg(slice_size=[8, 8]),
                   device="cpu")
    assert result.steps == 4


def test_loss_curve_does_not_depend_on_worker_processes(tiny_dataset, tmp_path, run_a):
    # every sample's augmentation and order come from the seed, not from worker RNGs
    again = train("ddpm", tiny_dataset, tmp_path / "w", config=_cfg(workers=2), device="cpu")
    assert [r["loss"] for r in again.losses] == [r["loss"] for r in run_a.losses]
