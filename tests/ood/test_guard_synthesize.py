"""The guard through `medxlate synthesize`: one warning line per input, the report, and
--strict-inputs failing that input (exit 7) while the cohort goes on; nothing written is lost."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.io.nifti import write_nifti
from medxlate.ood.record import set_data_inputs
from medxlate.weights import file_tensor_digest, load_checkpoint, read_meta
from tests.synth.conftest import make_checkpoint

runner = CliRunner()
WORK = [4.0, 4.0, 4.0]


@pytest.fixture(scope="module")
def weights(tmp_path_factory, t1_record):
    path = make_checkpoint(tmp_path_factory.mktemp("w") / "p2p.safetensors",
                           data={"spacing_mm": WORK, "slice_axis": 2, "region": "brain"})
    set_data_inputs(path, {**t1_record, "working_spacing_mm": WORK})
    return path


@pytest.fixture()
def cohort(tmp_path, heads):
    folder = tmp_path / "in"
    folder.mkdir()
    write_nifti(heads[4].mr["t1w"], folder / "a_t1.nii.gz")
    write_nifti(heads[4].ct, folder / "b_ct.nii.gz")
    write_nifti(heads[5].mr["t2w"], folder / "c_head.nii.gz")  # no contrast in the name
    return folder


def synth(weights, inp, out, *extra):
    return runner.invoke(app, ["synthesize", "--quiet", "--model", "pix2pix", "--weights",
                               str(weights), "--in", str(inp), "--out", str(out), *extra])


def warning_lines(result) -> list[str]:
    return [ln for ln in result.stderr.splitlines() if "outside what pix2pix" in ln]


def test_warns_once_per_input_and_reports(tmp_path, weights, cohort):
    res = synth(weights, cohort, tmp_path / "out", "--report", str(tmp_path / "r.json"))
    assert res.exit_code == 0, res.output
    lines = warning_lines(res)
    assert len(lines) == 2 and "Traceback" not in res.stderr
    assert "b_ct.nii.gz" in lines[0] and "looks like a CT" in lines[0]
    assert "c_head.nii.gz" in lines[1] and "looks T2-weighted" in lines[1]
    assert "intensity profile" in lines[1]
    cases = {c["id"]: c for c in json.loads((tmp_path / "r.json").read_text())["cases"]}
    assert "input_warnings" not in cases["a_t1"]
    assert [f["check"] for f in cases["b_ct"]["input_warnings"]] == ["modality"]
    assert [f["check"] for f in cases["c_head"]["input_warnings"]] == ["contrast", "intensity"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a_t1_sct.nii.gz", "b_ct_sct.nii.gz", "c_head_sct.nii.gz"]


def test_a_t2_named_input_gets_one_line_for_its_name_and_its_intensities(tmp_path, weights,
                                                                          heads):
    src = tmp_path / "head_T2w.nii.gz"  # a BIDS name: synth.source_tag reads the tag
    write_nifti(heads[5].mr["t2w"], src)
    res = synth(weights, src, tmp_path / "o.nii.gz", "--report", str(tmp_path / "r.json"))
    assert res.exit_code == 0, res.output
    lines = warning_lines(res)
    assert len(lines) == 1 and "is named t2" in lines[0] and "intensity profile" in lines[0]
    case = json.loads((tmp_path / "r.json").read_text())["cases"][0]
    assert [f["check"] for f in case["input_warnings"]] == ["source_tag", "contrast",
                                                            "intensity"]


def test_strict_inputs_fail_those_inputs_only(tmp_path, weights, cohort):
    out = tmp_path / "out"
    out.mkdir()
    kept = out / "b_ct_sct.nii.gz"  # an earlier run's output of the CT case
    kept.write_bytes(b"earlier output")
    res = synth(weights, cohort, out, "--strict-inputs", "--overwrite",
                "--report", str(tmp_path / "r.json"))
    assert res.exit_code == 8, res.output  # partial: the T1 head was written
    cases = {c["id"]: c for c in json.loads((tmp_path / "r.json").read_text())["cases"]}
    assert cases["a_t1"]["status"] == "ok"
    for bad in ("b_ct", "c_head"):
        assert cases[bad]["status"] == "failed" and cases[bad]["exit_code"] == 7
        assert "--strict-inputs" in cases[bad]["error"] and cases[bad]["input_warnings"]
    assert kept.read_bytes() == b"earlier output"  # nothing already written is lost
    assert not (out / "c_head_sct.nii.gz").exists()


def test_single_input_strict_exit_7(tmp_path, weights, cohort):
    res = synth(weights, cohort / "b_ct.nii.gz", tmp_path / "o.nii.gz", "--strict-inputs")
    assert res.exit_code == 7
    assert "looks like a CT" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "o.nii.gz").exists()


def _report_case(path) -> dict:
    report = json.loads(path.read_text())
    assert report["counts"] == {"ok": 0, "skipped": 0, "failed": 1, "not_started": 0}
    (case,) = report["cases"]
    return case


def test_single_input_refused_still_writes_its_report(tmp_path, weights, heads):
    # A T2w head into a model trained on T1w only, under a neutral name: exit 7 (README's
    # exit-code table), the report names the case, its code and the guard's findings, as a
    # folder run's report does; nothing else is written (no output, no temporary file).
    src = tmp_path / "in" / "x.nii.gz"
    src.parent.mkdir()
    write_nifti(heads[5].mr["t2w"], src)
    run = tmp_path / "run"
    run.mkdir()
    res = synth(weights, src, run / "o.nii.gz", "--strict-inputs", "--report",
                str(run / "r.json"))
    assert res.exit_code == 7 and "Traceback" not in res.stderr
    assert res.stderr.count("medxlate: error:") == 1
    assert sorted(p.name for p in run.iterdir()) == ["r.json"]
    case = _report_case(run / "r.json")
    assert case["status"] == "failed" and case["exit_code"] == 7
    assert case["input"] == str(src) and case["output"] == str(run / "o.nii.gz")
    assert "--strict-inputs" in case["error"]
    assert "contrast" in [f["check"] for f in case["input_warnings"]]
    res = synth(weights, src.parent, tmp_path / "folder", "--strict-inputs", "--report",
                str(tmp_path / "rf.json"))  # the same input as a folder: the same record
    folder = _report_case(tmp_path / "rf.json")
    assert res.exit_code == 7 and folder["exit_code"] == 7
    assert folder["input_warnings"] == case["input_warnings"]


def test_single_input_unreadable_still_writes_its_report(tmp_path, weights, heads):
    a = heads[4].mr["t1w"].array.copy()
    a[10, 10, 10:13] = np.nan  # exit 3: input invalid (README's exit-code table)
    src = _nifti(tmp_path / "nan.nii.gz", a)
    run = tmp_path / "run"
    run.mkdir()
    res = synth(weights, src, run / "o.nii.gz", "--report", str(run / "r.json"))
    assert res.exit_code == 3 and "3 NaN" in res.stderr and "Traceback" not in res.stderr
    assert sorted(p.name for p in run.iterdir()) == ["r.json"]
    case = _report_case(run / "r.json")
    assert case["status"] == "failed" and case["exit_code"] == 3
    assert case["error"].startswith("InputError: ") and "3 NaN" in case["error"]


def test_single_input_failing_its_write_still_writes_its_report(tmp_path, weights, heads,
                                                                 monkeypatch):
    from medxlate.errors import OutputError
    from medxlate.io import readers

    def refuse_write(*args, **kwargs):
        raise OutputError("disk full (test)")

    monkeypatch.setattr(readers, "write_volume", refuse_write)  # after the model stage
    src = tmp_path / "t1.nii.gz"
    write_nifti(heads[4].mr["t1w"], src)
    run = tmp_path / "run"
    run.mkdir()
    res = synth(weights, src, run / "o.nii.gz", "--report", str(run / "r.json"))
    assert res.exit_code == 4 and "disk full (test)" in res.stderr
    assert sorted(p.name for p in run.iterdir()) == ["r.json"]
    case = _report_case(run / "r.json")
    assert case["exit_code"] == 4 and case["error"] == "OutputError: disk full (test)"
    assert case["shape"] == list(heads[4].mr["t1w"].shape)  # it got past the model stage


def _nifti(path, array, zooms=(4.0, 4.0, 4.0)):
    nib.save(nib.Nifti1Image(array, np.diag([*zooms, 1.0])), str(path))
    return path


def test_constant_volume(tmp_path, weights):
    src = _nifti(tmp_path / "zero.nii.gz", np.zeros((40, 40, 30), np.float32))
    res = synth(weights, src, tmp_path / "o.nii.gz")
    assert "constant volume (every voxel is 0)" in res.stderr and "Traceback" not in res.stderr
    strict = synth(weights, src, tmp_path / "o2.nii.gz", "--strict-inputs")
    assert strict.exit_code == 7 and not (tmp_path / "o2.nii.gz").exists()


def test_single_slice(tmp_path, weights, heads):
    mr = heads[4].mr["t1w"]
    src = _nifti(tmp_path / "one.nii.gz", mr.array[:, :, 22:23].copy())
    res = synth(weights, src, tmp_path / "o.nii.gz", "--strict-inputs")
    assert res.exit_code == 7 and "a single slice (shape 48x56x1)" in res.stderr
    assert "Traceback" not in res.stderr


def test_ten_mm_slices(tmp_path, weights, heads):
    from medxlate.synth.grid import to_spacing

    thick = to_spacing(heads[4].mr["t1w"], [4.0, 4.0, 10.0])
    src = tmp_path / "thick.nii.gz"
    write_nifti(thick, src)
    res = synth(weights, src, tmp_path / "o.nii.gz", "--strict-inputs")
    assert res.exit_code == 7 and "voxels 10 mm along one axis" in res.stderr


def test_pelvis_into_brain_model(tmp_path, weights):
    from medxlate.phantom.subject import PhantomConfig, make_subject

    pelvis = make_subject(PhantomConfig(region="pelvis", size=(64, 48, 36), ct_on_mr=False),
                          5, 0)
    src = tmp_path / "pelvis.nii.gz"
    write_nifti(pelvis.mr["t1w"], src)
    res = synth(weights, src, tmp_path / "o.nii.gz", "--strict-inputs")
    assert res.exit_code == 7 and "larger than the largest training body" in res.stderr


def test_4d_series_is_refused(tmp_path, weights):
    src = _nifti(tmp_path / "fmri.nii.gz", np.ones((20, 20, 10, 5), np.float32))
    res = synth(weights, src, tmp_path / "o.nii.gz")
    assert res.exit_code == 3 and "image is 4D (20, 20, 10, 5) (axis 3 has 5)" in res.stderr
    assert not (tmp_path / "o.nii.gz").exists()


def test_nan_voxels_are_refused(tmp_path, weights, heads):
    a = heads[4].mr["t1w"].array.copy()
    a[10, 10, 10:13] = np.nan
    src = _nifti(tmp_path / "nan.nii.gz", a)
    res = synth(weights, src, tmp_path / "o.nii.gz")
    assert res.exit_code == 3 and "3 NaN" in res.stderr and "Traceback" not in res.stderr


def _copy_mr(mridir, dst, slope=None):
    dst.mkdir()
    for f in sorted((mridir / "mr_t2").iterdir()):
        d = pydicom.dcmread(f)
        if slope is not None:
            d.RescaleSlope, d.RescaleIntercept = slope, 0
        d.save_as(dst / f.name)
    return dst


def test_real_mr_with_negative_slope(tmp_path, weights, mridir):
    src = _copy_mr(mridir, tmp_path / "neg", slope=-1)
    res = synth(weights, src, tmp_path / "o.nii.gz", "--strict-inputs")
    assert res.exit_code == 7
    assert "MR with negative values" in res.stderr and "negative rescale slope" in res.stderr


def test_real_t2_series_into_t1_model(tmp_path, weights, mridir):
    src = _copy_mr(mridir, tmp_path / "t2")
    res = synth(weights, src, tmp_path / "o.nii.gz", "--report", str(tmp_path / "r.json"))
    assert res.exit_code == 0, res.output
    line = warning_lines(res)[0]
    assert "DICOM tags say T2-weighted (TE 98.1 ms, TR 6285 ms)" in line
    assert "trained on t1 only" in line


def test_record_keeps_every_tensor(tmp_path, t1_record):
    path = make_checkpoint(tmp_path / "w.safetensors")
    before_tensors, before_meta = load_checkpoint(path)
    digest_before = file_tensor_digest(path)
    set_data_inputs(path, t1_record)
    assert file_tensor_digest(path) == digest_before  # stored digest still matches
    tensors, meta = load_checkpoint(path)
    assert all(np.array_equal(tensors[k].numpy(), before_tensors[k].numpy())
               for k in before_tensors)
    assert meta.data["inputs"] == json.loads(json.dumps(t1_record))
    assert meta.config == before_meta.config and meta.data["spacing_mm"] == \
        before_meta.data["spacing_mm"]
    set_data_inputs(path, {**t1_record, "subjects": 99})  # rewriting replaces it
    assert read_meta(path).data["inputs"]["subjects"] == 99


def test_info_model_shows_the_record(weights):
    res = runner.invoke(app, ["info", "--model", "pix2pix", "--weights", str(weights)])
    assert res.exit_code == 0, res.output
    assert "contrasts" in res.stdout and "t1" in res.stdout and "brain" in res.stdout
    js = runner.invoke(app, ["info", "--model", "pix2pix", "--weights", str(weights), "--json"])
    record = json.loads(js.stdout)["training_inputs"]
    assert record["contrasts"] == ["t1"] and record["subjects"] == 4
