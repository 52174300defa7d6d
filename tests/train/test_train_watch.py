"""A run that shows whether it learns: time budget, best checkpoint, NaN stop, patience,
bitwise resume (issue 22)."""

from __future__ import annotations

import csv
import json
import math
import shutil
import types

import pytest
import torch
from conftest import TINY_DDPM
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.errors import UsageError
from medxlate.models.ddpm.family import DDPMFamily
from medxlate.train import train
from medxlate.train.budget import parse_duration
from medxlate.train.watch import BestTracker
from medxlate.weights import load_checkpoint, read_meta

runner = CliRunner()


def _cfg(**kw):
    return {"base": "demo", **TINY_DDPM, **kw}


def _csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


class FakeClock:
    """The engine's clock advanced by exactly one second per optimiser cycle."""

    def __init__(self, monkeypatch):
        import medxlate.train.engine as engine

        self.now = 0.0
        monkeypatch.setattr(engine, "time", types.SimpleNamespace(perf_counter=lambda: self.now))
        original = engine._Run._cycle

        def cycle(run, step, batches):
            self.now += 1.0
            return original(run, step, batches)

        monkeypatch.setattr(engine._Run, "_cycle", cycle)


@pytest.mark.parametrize("text, seconds", [("90s", 90.0), ("30m", 1800.0), ("2h", 7200.0),
                                           ("1h30m", 5400.0), ("0.5m", 30.0), ("45", 45.0)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30x", "m30", "-5m", "0s", "1m1m", "inf", "nan", "3 h"])
def test_parse_duration_refuses(text):
    with pytest.raises(UsageError):
        parse_duration(text)


def test_bad_time_budget_is_one_line_exit_2(tiny_dataset, tmp_path):
    r = runner.invoke(app, ["train", "--model", "ddpm", "--data", str(tiny_dataset), "--out",
                            str(tmp_path / "r"), "--time-budget", "30x", "--device", "cpu"])
    assert r.exit_code == 2
    assert r.stderr.strip().count("\n") == 0 and "--time-budget '30x'" in r.stderr
    assert not (tmp_path / "r").exists()


def test_time_budget_stops_at_a_checkpoint_and_validates(tiny_dataset, tmp_path, monkeypatch):
    FakeClock(monkeypatch)
    out = tmp_path / "budget"
    result = train("ddpm", tiny_dataset, out, config=_cfg(steps=1000, checkpoint_every=100,
                                                          val_volumes=0),
                   device="cpu", time_budget="3.5s")
    # one second per cycle: the clock passes 3.5 s after the 4th step
    assert result.stopped == "time_budget" and result.steps == 4
    assert (out / "checkpoints" / "step-00000004" / "state.json").is_file()
    meta = read_meta(out / "model.safetensors")
    assert meta.extra["steps"] == 4 and meta.extra["stopped"] == "time_budget"
    val = _csv(out / "val.csv")
    assert [int(r["step"]) for r in val] == [4]           # validated once more, at the stop
    notes = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert {"kind": "stopped", "step": 4, "reason": "time_budget", "elapsed_s": 4.0} in notes


def test_time_budget_real_clock(tiny_dataset, tmp_path):
    out = tmp_path / "real"
    result = train("ddpm", tiny_dataset, out, config=_cfg(steps=100000, checkpoint_every=10**6,
                                                          val_volumes=0),
                   device="cpu", time_budget=1.0)
    assert result.stopped == "time_budget" and 1 <= result.steps < 100000
    rows = _csv(out / "train.csv")
    assert int(rows[-1]["step"]) == result.steps
    assert 1.0 <= float(rows[-1]["elapsed_s"]) < 10.0
    assert [p.name for p in (out / "checkpoints").iterdir()] == [f"step-{result.steps:08d}"]


def test_best_checkpoint_follows_the_lowest_validation_mae(tiny_dataset, tmp_path, monkeypatch):
    import medxlate.train.monitor as monitor

    scores = iter([30.0, 10.0, 20.0, 25.0])   # validations at steps 2, 4, 6, 8

    def fake_validate(*args, **kwargs):
        return {"val_mae_hu": next(scores), "val_slices": 2}

    monkeypatch.setattr(monitor, "validate", fake_validate)
    out = tmp_path / "best"
    result = train("ddpm", tiny_dataset, out, config=_cfg(steps=8, val_every=2,
                                                          checkpoint_every=2,
                                                          keep_checkpoints=0,
                                                          val_volumes=0),
                   device="cpu")
    assert result.best_step == 4 and result.best_score == 10.0
    meta = read_meta(out / "best.safetensors")
    assert meta.extra["best"] == {"step": 4, "metric": "val_mae_hu", "score": 10.0}
    assert meta.extra["steps"] == 4
    # best.safetensors holds the inference weights of step 4: the EMA copy in that checkpoint
    best, _ = load_checkpoint(out / "best.safetensors")
    at4, _ = load_checkpoint(out / "checkpoints" / "step-00000004" / "model.safetensors")
    at8, _ = load_checkpoint(out / "model.safetensors")
    assert all(torch.equal(best[k], at4[k]) for k in best)
    assert not all(torch.equal(best[k], at8[k]) for k in best)
    assert read_meta(out / "model.safetensors").extra["best"]["step"] == 4
    assert [float(r["val_mae_hu"]) for r in _csv(out / "val.csv")] == [30.0, 10.0, 20.0, 25.0]


def test_patience_warns_and_early_stop_stops(tiny_dataset, tmp_path, monkeypatch, capsys):
    import medxlate.train.monitor as monitor

    scores = iter([30.0, 10.0, 20.0, 25.0, 5.0, 40.0, 40.0, 40.0, 40.0, 40.0])
    monkeypatch.setattr(monitor, "validate",
                        lambda *a, **k: {"val_mae_hu": next(scores), "val_slices": 2})
    result = train("ddpm", tiny_dataset, tmp_path / "p", config=_cfg(
        steps=10, val_every=1, checkpoint_every=100, val_volumes=0, patience=2),
        device="cpu")
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "has not improved" in line]
    # validations at steps 1..10: best at 2, stalls at 3, 4 (warn); best at 5; stalls from
    # 6: a warning every 2 validations without improvement (7, 9)
    assert [w.split(":")[2].strip() for w in warnings] == ["step 4", "step 7", "step 9"]
    assert "has not improved for 2 validations (best 10 at step 2)" in warnings[0]
    assert result.stopped is None and result.steps == 10

    scores = iter([30.0, 10.0, 20.0, 25.0, 5.0])
    result = train("ddpm", tiny_dataset, tmp_path / "e", config=_cfg(
        steps=10, val_every=1, checkpoint_every=100, val_volumes=0, patience=2,
        early_stop=True), device="cpu")
    assert result.stopped == "early_stop" and result.steps == 4 and result.best_step == 2
    assert read_meta(tmp_path / "e" / "model.safetensors").extra["stopped"] == "early_stop"
    assert [int(r["step"]) for r in _csv(tmp_path / "e" / "val.csv")] == [1, 2, 3, 4]


def test_early_stop_needs_patience(tiny_dataset, tmp_path):
    with pytest.raises(UsageError, match="early_stop needs patience"):
        train("ddpm", tiny_dataset, tmp_path / "x", config=_cfg(early_stop=True), device="cpu")


def test_tracker_ignores_non_finite_and_prefers_volume_mae():
    t = BestTracker(patience=1)
    assert t.update(1, {"val_mae_hu": 50.0, "vol_mae_hu": 80.0}) and t.key == "vol_mae_hu"
    assert not t.update(2, {"vol_mae_hu": math.nan})
    assert t.update(3, {"vol_mae_hu": 70.0, "val_mae_hu": 90.0}) and t.best == 70.0


def _nan_at(monkeypatch, bad_step: int):
    original = DDPMFamily.training_step

    def step(self, nets, batch, ctx, config):
        losses = original(self, nets, batch, ctx, config)
        if ctx.step_index + 1 == bad_step:
            losses = {**losses, "loss": float("nan")}
        return losses

    monkeypatch.setattr(DDPMFamily, "training_step", step)


def test_nan_loss_stops_with_exit_1_and_keeps_the_last_checkpoint(tiny_dataset, tmp_path,
                                                                  monkeypatch):
    _nan_at(monkeypatch, 5)
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps(_cfg(steps=8, checkpoint_every=2, keep_checkpoints=0,
                                      val_volumes=0)))
    out = tmp_path / "nan"
    r = runner.invoke(app, ["train", "--model", "ddpm", "--data", str(tiny_dataset), "--out",
                            str(out), "--config", str(config), "--device", "cpu"])
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "training diverged at step 5 (loss=nan)" in lines[0]
    assert "last good checkpoint (step 4) is kept" in lines[0]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "step-00000002", "step-00000004"]
    assert not (out / "model.safetensors").exists()
    assert [int(r["step"]) for r in _csv(out / "train.csv")] == [1, 2, 3, 4]
    # the kept checkpoint resumes (the injected NaN gone): the run completes
    monkeypatch.undo()
    result = train("ddpm", tiny_dataset, out, resume=True, device="cpu")
    assert result.steps == 8 and (out / "model.safetensors").is_file()


def test_huge_learning_rate_diverges(tiny_dataset, tmp_path):
    from medxlate.train.watch import TrainingDiverged

    with pytest.raises(TrainingDiverged, match=r"training diverged at step \d+"):
        train("ddpm", tiny_dataset, tmp_path / "lr", config=_cfg(
            steps=50, lr=1e30, grad_clip=None, val_volumes=0, checkpoint_every=100),
            device="cpu")


def _aug(**kw):
    return _cfg(steps=8, lr_schedule="cosine", warmup_steps=2, ema=0.9, val_every=3,
                checkpoint_every=2, keep_checkpoints=0, val_volumes=0,
                augment={"flip_lr": 0.5, "flip_ap": 0.5, "affine": 0.5, "mr_jitter": 0.5},
                **kw)


def test_resume_is_bitwise(tiny_dataset, tmp_path, monkeypatch):
    """N steps straight == N/2 (stopped by the time budget), then --resume for the rest:
    data order, augmentation, EMA, optimiser, LR schedule and the noise all continue."""
    straight = train("ddpm", tiny_dataset, tmp_path / "straight", config=_aug(), device="cpu")
    with monkeypatch.context() as m:
        FakeClock(m)
        half = train("ddpm", tiny_dataset, tmp_path / "halves", config=_aug(), device="cpu",
                     time_budget=3.5)
    assert half.stopped == "time_budget" and half.steps == 4
    rest = train("ddpm", tiny_dataset, tmp_path / "halves", resume=True, device="cpu")
    assert rest.steps == 8 and rest.stopped is None
    assert [r["loss"] for r in half.losses + rest.losses] == [r["loss"]
                                                              for r in straight.losses]
    for name in ("model.safetensors", "checkpoints/step-00000008/state.safetensors"):
        a, _ = load_checkpoint(tmp_path / "straight" / name) if name.startswith("model") \
            else (_load(tmp_path / "straight" / name), None)
        b, _ = load_checkpoint(tmp_path / "halves" / name) if name.startswith("model") \
            else (_load(tmp_path / "halves" / name), None)
        assert a.keys() == b.keys()
        for key in a:                                    # nets, EMA and Adam moments
            assert torch.equal(a[key], b[key]), (name, key)
    s_val, h_val = _csv(tmp_path / "straight" / "val.csv"), _csv(tmp_path / "halves" / "val.csv")
    keep = ("step", "val_mae_hu", "val_me_hu", "val_psnr")
    assert [{k: r[k] for k in keep} for r in s_val] == [{k: r[k] for k in keep} for r in h_val
                                                         if int(r["step"]) != 4]


def _load(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def test_resume_may_change_validation_options_only(tiny_dataset, tmp_path):
    out = tmp_path / "r"
    train("ddpm", tiny_dataset, out, config=_cfg(steps=2, val_volumes=0), device="cpu")
    result = train("ddpm", tiny_dataset, out, resume=True, steps=4, device="cpu",
                   overrides={"val_every": 1, "patience": 3})
    assert result.steps == 4
    assert json.loads((out / "config.json").read_text())["val_every"] == 0
    assert read_meta(out / "model.safetensors").config["patience"] == 3
    with pytest.raises(UsageError, match="--resume uses the run's config.json"):
        train("ddpm", tiny_dataset, out, resume=True, steps=5, device="cpu",
              overrides={"lr": 1.0})


def test_resume_with_a_spent_budget_trains_no_step(tiny_dataset, tmp_path, monkeypatch):
    """The budget is the run's total: a resumed run whose clock already passed it finishes
    (validation, model.safetensors) without another step; a larger budget continues it."""
    out = tmp_path / "spent"
    with monkeypatch.context() as m:
        FakeClock(m)
        first = train("ddpm", tiny_dataset, out, config=_cfg(steps=8, checkpoint_every=100,
                                                             val_volumes=0),
                      device="cpu", time_budget=2.5)
    assert first.stopped == "time_budget" and first.steps == 3
    (out / "model.safetensors").unlink()            # as if killed before the last write
    with monkeypatch.context() as m:
        FakeClock(m)
        again = train("ddpm", tiny_dataset, out, resume=True, device="cpu", time_budget=2.5)
        assert again.stopped == "time_budget" and again.steps == 3 and again.losses == []
        assert read_meta(out / "model.safetensors").extra["steps"] == 3
        more = train("ddpm", tiny_dataset, out, resume=True, device="cpu", time_budget=5.5)
    assert more.stopped == "time_budget" and more.steps == 6 and len(more.losses) == 3


def test_progress_line_shows_loss_val_mae_rate_and_eta(tiny_dataset, tmp_path):
    import re

    config = tmp_path / "cfg.json"
    config.write_text(json.dumps(_cfg(steps=3, val_every=1, progress=True, val_volumes=0)))
    r = runner.invoke(app, ["train", "--model", "ddpm", "--data", str(tiny_dataset), "--out",
                            str(tmp_path / "run"), "--config", str(config), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("train: step")]
    assert len(lines) == 3
    assert re.fullmatch(r"train: step 1/3: loss [\d.e+-]+, mse [\d.e+-]+, vb [\d.e+-]+, "
                        r"[\d.e+-]+ steps/s, ETA \d+s", lines[0]), lines[0]
    # from the second step on, the last validation's MAE (of step 1, then 2)
    rows = _csv(tmp_path / "run" / "val.csv")
    shown = [float(re.search(r"val mae_hu ([\d.e+-]+),", ln).group(1)) for ln in lines[1:]]
    assert shown == pytest.approx([float(r["val_mae_hu"]) for r in rows[:2]], rel=1e-3)
