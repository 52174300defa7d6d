"""Issue 30 through `synthesize`: the mask keeps a dark-skinned head and warns when it drops
signal; a source tag the checkpoint never saw warns (and fails under --strict-inputs, exit 7);
per-case seconds are the case's own work, not its time queued behind other cases."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.errors import PartialFailure
from medxlate.io.readers import read_volume
from medxlate.synth.run import SynthesizeRequest, run_synthesize
from medxlate.synth.source_tag import tag_of_path, trained_contrasts
from medxlate.synth.timing import STAGE_THREADS
from tests.preprocess.layered_head import head_labels, render
from tests.synth.conftest import TRAIN_SPACING, make_checkpoint, phantom_mr, write_nifti

AFF = np.diag([1.5, 1.5, 2.0, 1.0])


@pytest.fixture(scope="module")
def t1_weights(tmp_path_factory):
    """A pix2pix checkpoint whose training record says T1w inputs (issue 24's record)."""
    return make_checkpoint(tmp_path_factory.mktemp("w") / "t1.safetensors", data={
        "spacing_mm": TRAIN_SPACING, "slice_axis": 2, "inputs": {"contrasts": ["t1"]}})


def _run(**kw):
    try:
        return run_synthesize(SynthesizeRequest(model="pix2pix", progress=False, **kw))
    except PartialFailure as exc:
        return exc.result


# -- the mask ------------------------------------------------------------------------------
def test_t2_head_with_dark_skin_and_skull_loses_under_1_percent_to_background(tmp_path,
                                                                              t1_weights):
    labels, reference = head_labels()
    src = write_nifti(tmp_path / "head_T1w.nii.gz", render(labels, "t2"), np.eye(4))
    out = tmp_path / "sct.nii.gz"
    report = tmp_path / "r.json"
    _run(inputs=src, out=out, weights=t1_weights, report=report)
    values = read_volume(out).array
    background = (values == -1024.0) & reference
    assert background.sum() / reference.sum() < 0.01
    case = json.loads(report.read_text())["cases"][0]
    assert case["mask"]["signal_lost"] < 0.02 and "warnings" not in case


def test_mask_dropping_signal_warns_once_with_the_fraction(tmp_path, t1_weights, capsys):
    labels, _ = head_labels()
    image = render(labels, "t2")
    image[2:28, 2:28, 2:28] += 80.0  # a second, separate object: the mask keeps the head
    src = write_nifti(tmp_path / "two.nii.gz", image, np.eye(4))
    report = tmp_path / "r.json"
    lines = []
    run_synthesize(SynthesizeRequest(model="pix2pix", inputs=src, out=tmp_path / "o.nii.gz",
                                     weights=t1_weights, report=report, progress=False),
                   echo=lines.append)
    warned = [line for line in lines if "body mask leaves out" in line]
    case = json.loads(report.read_text())["cases"][0]
    lost = case["mask"]["signal_lost"]
    assert lost > 0.02 and len(warned) == 1 and f"{100 * lost:.1f} %" in warned[0]
    assert case["warnings"] == warned


# -- the source tag ------------------------------------------------------------------------
def test_tags_from_names():
    from pathlib import Path

    assert tag_of_path(Path("a/sub-01_T2w.nii.gz")) == "t2"
    assert tag_of_path(Path("brain-000/mr_t2.mha")) == "t2"
    assert tag_of_path(Path("s/FLAIR.nii")) == "flair"
    assert tag_of_path(Path("s/mr.nii.gz")) is None
    assert tag_of_path(Path("s/t2_head_dark.nii.gz")) is None  # only a suffix counts


def test_shipped_syndiff_was_trained_on_t1_and_source_t2_warns_at_once(tmp_path):
    from medxlate.synth.model import load_model

    assert trained_contrasts(load_model("syndiff")) == ("t1",)
    src = write_nifti(tmp_path / "mr.nii.gz", phantom_mr((24, 24, 4)), AFF)
    done = CliRunner().invoke(app, ["synthesize", "--model", "syndiff", "--source", "t2",
                                    "--in", str(src), "--out", str(tmp_path / "o.nii.gz"),
                                    "--quiet"])
    assert done.exit_code == 0, done.output
    warned = [ln for ln in done.output.splitlines() if "trained on T1 inputs, not T2" in ln]
    assert len(warned) == 1 and warned[0].startswith("medxlate: warning: --source t2")
    # the warning comes before any case is read (it needs only the checkpoint)
    assert done.output.index("warning") < done.output.index("written")


def test_t2_tagged_input_to_t1_model_warns_and_strict_refuses_it_only(tmp_path, t1_weights):
    folder = tmp_path / "in"
    folder.mkdir()
    write_nifti(folder / "sub-01_T1w.nii.gz", phantom_mr((24, 24, 4), seed=1), AFF)
    write_nifti(folder / "sub-02_T2w.nii.gz", phantom_mr((24, 24, 4), seed=2), AFF)
    lines = []
    res = run_synthesize(SynthesizeRequest(model="pix2pix", inputs=folder,
                                           out=tmp_path / "a", weights=t1_weights,
                                           progress=False), echo=lines.append)
    assert [c["status"] for c in res.cases] == ["ok", "ok"]
    assert "input_warnings" not in res.cases[0]
    assert res.cases[1]["input_warnings"][0]["value"] == "t2"
    assert sum("sub-02_T2w" in ln and "not T2" in ln for ln in lines) == 1
    strict = _run(inputs=folder, out=tmp_path / "b", weights=t1_weights, strict_inputs=True)
    assert [c["status"] for c in strict.cases] == ["ok", "failed"]
    assert strict.cases[1]["exit_code"] == 7 and "--strict-inputs" in strict.cases[1]["error"]
    assert not (tmp_path / "b" / "sub-02_T2w_sct.nii.gz").exists()


def test_strict_source_t2_fails_every_input_with_exit_7(tmp_path, t1_weights):
    src = write_nifti(tmp_path / "mr.nii.gz", phantom_mr((24, 24, 4)), AFF)
    done = CliRunner().invoke(app, ["synthesize", "--model", "pix2pix", "--weights",
                                    str(t1_weights), "--source", "t2", "--strict-inputs",
                                    "--in", str(src), "--out", str(tmp_path / "o.nii.gz")])
    assert done.exit_code == 7, done.output
    assert not (tmp_path / "o.nii.gz").exists()


def test_unstated_contrast_never_warns(tmp_path, p2p_weights):
    src = write_nifti(tmp_path / "sub-01_T2w.nii.gz", phantom_mr((24, 24, 4)), AFF)
    lines = []
    run_synthesize(SynthesizeRequest(model="pix2pix", inputs=src, out=tmp_path / "o.nii.gz",
                                     weights=p2p_weights, progress=False, source="t2"),
                   echo=lines.append)
    assert not [ln for ln in lines if "warning" in ln]


# -- per-case seconds ----------------------------------------------------------------------
def test_case_seconds_are_own_work_with_a_slow_reader_and_writer(tmp_path, p2p_weights,
                                                                 monkeypatch):
    from medxlate.io import readers

    read_s, write_s, n = 0.6, 0.6, 4
    real_read, real_write = readers.read_volume, readers.write_volume

    def slow_read(*a, **k):
        time.sleep(read_s)
        return real_read(*a, **k)

    def slow_write(*a, **k):
        time.sleep(write_s)
        return real_write(*a, **k)

    monkeypatch.setattr(readers, "read_volume", slow_read)
    monkeypatch.setattr(readers, "write_volume", slow_write)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(n):
        write_nifti(folder / f"case{i}.nii.gz", phantom_mr((24, 24, 4), seed=i), AFF)
    t0 = time.perf_counter()
    res = _run(inputs=folder, out=tmp_path / "out", weights=p2p_weights)
    wall = time.perf_counter() - t0
    seconds = [c["seconds"] for c in res.cases]
    assert all(c["status"] == "ok" for c in res.cases)
    assert res.report["timing"]["threads"] == STAGE_THREADS
    assert sum(seconds) <= wall * STAGE_THREADS
    # each case did one slow read and one slow write, plus a little model work; the time it
    # spent queued behind the others' writes is queue_seconds, not seconds
    for c in res.cases:
        assert read_s + write_s <= c["seconds"] < read_s + write_s + 0.9, c
    assert max(c["queue_seconds"] for c in res.cases) >= 0.5 * write_s
