"""A killed bench resumes at the first unfinished model and retrains nothing finished."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medxlate.bench import load_spec, select
from medxlate.bench.runner import Hooks, run_bench
from medxlate.errors import UsageError
from medxlate.train import train as real_train
from medxlate.weights import read_meta

TINY = Path(__file__).with_name("tiny.yaml")


class Recorder:
    """Counts train and synthesize calls; ``kill`` says which call raises KeyboardInterrupt."""

    def __init__(self, kill_train=None, kill_synth=None):
        self.trains, self.synths = [], []
        self.kill_train, self.kill_synth = kill_train, kill_synth

    def train(self, model, data, out, **kw):
        row = Path(out).parent.name
        self.trains.append((row, bool(kw.get("resume"))))
        if row == self.kill_train:
            # killed after the checkpoint of step 2 (of 4), before model.safetensors
            real_train(model, data, out, **{**kw, "steps": 2})
            (Path(out) / "model.safetensors").unlink()
            raise KeyboardInterrupt
        return real_train(model, data, out, **kw)

    def synthesize(self, req):
        key = (Path(req.out).parents[1].name, Path(req.out).name.split(".")[0])
        if key == self.kill_synth:
            raise KeyboardInterrupt
        self.synths.append(key)
        from medxlate.synth.run import run_synthesize

        run_synthesize(req, echo=lambda line: None)

    def hooks(self):
        return Hooks(train=self.train, synthesize=self.synthesize)


def test_killed_bench_resumes_without_retraining(tmp_path):
    spec, work = load_spec(TINY), tmp_path / "W"
    # 1. killed while synthesizing a's second held-out subject
    first = Recorder(kill_synth=("a", "brain-001"))
    with pytest.raises(KeyboardInterrupt):
        run_bench(spec, work, hooks=first.hooks(), echo=lambda line: None)
    assert first.trains == [("a", False)] and first.synths == [("a", "brain-000")]
    assert not (work / "models" / "a" / "row.json").exists()
    # 2. a is not retrained and brain-000 not redone; b is killed after a checkpoint
    second = Recorder(kill_train="b")
    with pytest.raises(KeyboardInterrupt):
        run_bench(spec, work, hooks=second.hooks(), echo=lambda line: None)
    assert second.trains == [("b", False)]
    assert second.synths == [("a", "brain-001")]
    row_a = json.loads((work / "models" / "a" / "row.json").read_text())
    assert [c["id"] for c in row_a["subjects"]] == ["brain-000", "brain-001"]
    assert not (work / "bench.json").exists()
    # 3. b resumes from its step-2 checkpoint to 4 steps; a is left alone
    third = Recorder()
    result = run_bench(spec, work, hooks=third.hooks(), echo=lambda line: None)
    assert third.trains == [("b", True)]
    assert third.synths == [("b", "brain-000"), ("b", "brain-001")]
    assert read_meta(work / "models" / "b" / "run" / "model.safetensors").extra["steps"] == 4
    assert [r["label"] for r in result["rows"]] == ["a", "b"]
    assert result["rows"][0] == {**row_a, "above_floor": result["rows"][0]["above_floor"],
                                 "vs_intensity_map": result["rows"][0]["vs_intensity_map"]}
    assert result["rows"][1]["budget"]["steps"] == 4
    for name in ("bench.md", "bench.json", "bench.csv", "bench-mri2ct.png"):
        assert (work / name).is_file()
    # 4. the same command once more: nothing runs, the same table comes out
    fourth = Recorder()
    again = run_bench(spec, work, hooks=fourth.hooks(), echo=lambda line: None)
    assert fourth.trains == [] and fourth.synths == []
    assert again["rows"] == result["rows"] and again["references"] == result["references"]
    # 4b. --models b: b's row again, and a's finished row still in the table
    only_b = run_bench(spec, work, select(spec, ["b"], None, None), hooks=fourth.hooks(),
                       echo=lambda line: None)
    assert [r["label"] for r in only_b["rows"]] == ["a", "b"] and fourth.trains == []
    # 5. another budget for a finished row is refused, not silently mixed in
    with pytest.raises(UsageError, match="another entry"):
        run_bench(spec, work, select(spec, ["a"], None, 3), hooks=Recorder().hooks(),
                  echo=lambda line: None)


def test_a_failing_row_is_reported_and_the_others_go_on(tmp_path):
    from medxlate.errors import InputError, PartialFailure

    spec, work = load_spec(TINY), tmp_path / "W"
    calls = []

    def train(model, data, out, **kw):
        calls.append(Path(out).parent.name)
        if Path(out).parent.name == "a":
            raise InputError("loss diverged at step 1 (constructed)")
        return real_train(model, data, out, **kw)

    with pytest.raises(PartialFailure, match=r"1 of 2 rows failed \(a\)"):
        run_bench(spec, work, hooks=Hooks(train=train), echo=lambda line: None)
    result = json.loads((work / "bench.json").read_text())
    assert [r["label"] for r in result["rows"]] == ["b"]
    assert result["failed"] == [{"label": "a", "error": "loss diverged at step 1 (constructed)",
                                 "exit_code": 3}]
    assert "- a: loss diverged at step 1" in (work / "bench.md").read_text()
    # a rerun retries the failed row only
    calls.clear()
    result = run_bench(spec, work, hooks=Hooks(), echo=lambda line: None)
    assert [r["label"] for r in result["rows"]] == ["a", "b"] and result["failed"] == []


def test_a_folder_of_fold_runs_is_an_ensemble_row(tmp_path):
    """weights: a folder of fold runs (*/model.safetensors) gives one row whose output is the
    voxel-wise mean of its members' outputs (the oracle: each member run alone)."""
    import shutil

    import nibabel as nib
    import numpy as np
    import yaml

    spec, work = load_spec(TINY), tmp_path / "W"
    run_bench(spec, work, hooks=Hooks(), echo=lambda line: None)
    folds = tmp_path / "folds"
    for i, label in enumerate(("a", "b")):
        (folds / f"fold_{i}").mkdir(parents=True)
        shutil.copy(work / "models" / label / "run" / "model.safetensors",
                    folds / f"fold_{i}" / "model.safetensors")
    raw = yaml.safe_load(TINY.read_text())
    raw["name"] = "tiny-ensemble"
    raw["models"] = [{"label": "ens", "model": "pix2pix", "weights": str(folds)},
                     {"label": "m0", "model": "pix2pix",
                      "weights": str(folds / "fold_0" / "model.safetensors")},
                     {"label": "m1", "model": "pix2pix",
                      "weights": str(folds / "fold_1" / "model.safetensors")}]
    path = tmp_path / "ens.yaml"
    path.write_text(yaml.safe_dump(raw))
    work2 = tmp_path / "W2"
    result = run_bench(load_spec(path), work2, hooks=Hooks(), echo=lambda line: None)
    ens = next(r for r in result["rows"] if r["label"] == "ens")
    assert ens["members"] == [str(folds / "fold_0" / "model.safetensors"),
                              str(folds / "fold_1" / "model.safetensors")]
    for name in ("brain-000", "brain-001"):
        out = {label: nib.load(work2 / "models" / label / "out" / f"{name}.nii.gz").get_fdata()
               for label in ("ens", "m0", "m1")}
        body = (out["m0"] > -1024) | (out["m1"] > -1024)
        # written as HU rounded to integers: the mean of two members within one HU
        assert np.abs(out["ens"] - (out["m0"] + out["m1"]) / 2)[body].max() <= 1.0


def test_reference_rows_of_an_older_recipe_are_made_again(tmp_path):
    """A cached reference row without the current recipe version (an intensity map from
    before air was written outside the body) is recomputed, predictions included."""
    spec, work = load_spec(TINY), tmp_path / "W"
    first = run_bench(spec, work, hooks=Hooks(), echo=lambda line: None)
    cached = work / "references" / "mri2ct" / "intensity-map.json"
    old = json.loads(cached.read_text())
    stale = {k: v for k, v in old.items() if k != "version"}
    stale["metrics"] = {**old["metrics"], "mae": 999.0}
    cached.write_text(json.dumps(stale))
    pred = next((work / "references" / "mri2ct" / "intensity-map").glob("*.nii.gz"))
    pred.write_bytes(b"not a volume")                  # a stale prediction file
    again = run_bench(spec, work, hooks=Hooks(), echo=lambda line: None)
    imap = next(r for r in again["references"] if r["label"] == "intensity-map")
    before = next(r for r in first["references"] if r["label"] == "intensity-map")
    assert imap["metrics"] == before["metrics"] and imap["version"] == before["version"]


def test_rows_of_shipped_weights_are_made_again_when_the_shipped_file_changes(
        tmp_path, monkeypatch):
    """A finished row of ``weights: shipped`` holds only for the shipped file it was made
    with: new shipped weights (another sha256) make it and its subjects again."""
    import shutil

    from medxlate.bench import runner

    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(TINY.read_text().split("models:")[0]
                         + "models:\n  - {label: s, model: pix2pix, weights: shipped}\n"
                         + "  - {label: t, model: cyclegan, weights: shipped}\n")
    spec, work = load_spec(spec_file), tmp_path / "W"
    shipped = {"sha": "a" * 64}       # the shipped files' sha256, as the manifest would say
    monkeypatch.setattr(runner.Bench, "_shipped_sha",
                        lambda self, entry: shipped["sha"] if entry.weights == "shipped" else None)
    made, tests = [], []

    def synthesize(req):            # a perfect prediction: the reference CT itself
        made.append(Path(req.out).name)
        subject = next(t for t in tests if Path(t.mr) == Path(req.inputs))
        shutil.copy(subject.ct, req.out)

    real_prepare = runner.prepare_cohort

    def prepare(*args, **kwargs):
        cohort = real_prepare(*args, **kwargs)
        tests[:] = cohort.tests
        return cohort

    monkeypatch.setattr(runner, "prepare_cohort", prepare)
    hooks = Hooks(synthesize=synthesize)
    first = run_bench(spec, work, hooks=hooks, echo=lambda line: None)
    assert len(made) == 4 and first["rows"][0]["weights_sha256"] == "a" * 64
    assert first["rows"][0]["metrics"]["mae"] == 0.0
    run_bench(spec, work, hooks=hooks, echo=lambda line: None)
    assert len(made) == 4                                  # the same files: nothing redone
    shipped["sha"] = "b" * 64
    lines = []
    again = run_bench(spec, work, hooks=hooks, echo=lines.append)
    assert len(made) == 8 and again["rows"][0]["weights_sha256"] == "b" * 64
    assert any("shipped weights changed" in line for line in lines)
    # a row not asked for (--models t) whose shipped file changed is left out, with a line
    shipped["sha"] = "c" * 64
    lines.clear()
    other = run_bench(spec, work, select(spec, ["t"], None, None), hooks=hooks,
                      echo=lines.append)
    assert len(made) == 10 and [r["label"] for r in other["rows"]] == ["t"]
    assert any(line.startswith("bench: s: left out, the shipped weights changed")
               for line in lines)


def test_shipped_sha_is_the_manifests(tmp_path):
    import json

    from medxlate.bench.runner import Bench

    spec = load_spec("readme")
    bench = Bench(spec, tmp_path / "W", echo=lambda line: None)
    pix = next(m for m in spec.models if m.model == "pix2pix")
    files = json.loads((Path(__file__).resolve().parents[2] / "weights"
                        / "manifest.json").read_text())["files"]
    assert bench._shipped_sha(pix) == files["pix2pix-demo.safetensors"]["sha256"]
    assert bench._shipped_sha(select(load_spec(TINY), None, None, None)[0]) is None
