"""Cohort runs: sharding, --skip-existing, isolated failures, devices, weights, reports."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.io.readers import read_volume
from tests.synth.conftest import make_checkpoint, phantom_mr, write_nifti

runner = CliRunner()
AFF = np.diag([1.5, 1.5, 2.0, 1.0])


def run(*args: str):
    return runner.invoke(app, ["synthesize", "--quiet", *args])


@pytest.fixture()
def cohort(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        write_nifti(folder / f"case{i}.nii.gz", phantom_mr((24, 24, 4), seed=i), AFF)
    return folder


def test_parts_partition_the_sorted_inputs(tmp_path, cohort, p2p_weights):
    written = []
    for part in range(2):
        out = tmp_path / f"out{part}"
        res = run("--model", "pix2pix", "--weights", str(p2p_weights), "--in", str(cohort),
                  "--out", str(out), "--num-parts", "2", "--part-id", str(part))
        assert res.exit_code == 0, res.output
        written.append(sorted(p.name for p in out.iterdir()))
    assert written[0] == ["case0_sct.nii.gz", "case2_sct.nii.gz", "case4_sct.nii.gz"]
    assert written[1] == ["case1_sct.nii.gz", "case3_sct.nii.gz"]
    bad = run("--model", "pix2pix", "--weights", str(p2p_weights), "--in", str(cohort),
              "--out", str(tmp_path / "x"), "--num-parts", "2", "--part-id", "2")
    assert bad.exit_code == 2


def test_skip_existing_and_overwrite(tmp_path, cohort, p2p_weights):
    out = tmp_path / "out"
    args = ["--model", "pix2pix", "--weights", str(p2p_weights), "--in", str(cohort),
            "--out", str(out)]
    assert run(*args, "--num-parts", "5", "--part-id", "1").exit_code == 0
    first = out / "case1_sct.nii.gz"
    stamp = first.stat().st_mtime_ns
    res = run(*args, "--skip-existing", "--report", str(tmp_path / "run.json"))
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "run.json").read_text())
    status = {os.path.basename(c["input"]): c["status"] for c in report["cases"]}
    assert status == {"case0.nii.gz": "ok", "case1.nii.gz": "skipped", "case2.nii.gz": "ok",
                      "case3.nii.gz": "ok", "case4.nii.gz": "ok"}
    assert first.stat().st_mtime_ns == stamp
    single = run("--model", "pix2pix", "--weights", str(p2p_weights), "--in",
                 str(cohort / "case1.nii.gz"), "--out", str(first))
    assert single.exit_code == 4 and "--overwrite" in single.output
    assert run("--model", "pix2pix", "--weights", str(p2p_weights), "--in",
               str(cohort / "case1.nii.gz"), "--out", str(first), "--overwrite").exit_code == 0
    assert first.stat().st_mtime_ns != stamp
    assert run(*args, "--skip-existing", "--overwrite").exit_code == 2


def test_a_failing_case_is_isolated_with_exit_8(tmp_path, cohort, p2p_weights):
    (cohort / "case2.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    out = tmp_path / "out"
    res = run("--model", "pix2pix", "--weights", str(p2p_weights), "--in", str(cohort),
              "--out", str(out), "--report", str(tmp_path / "run.json"))
    assert res.exit_code == 8, res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "case0_sct.nii.gz", "case1_sct.nii.gz", "case3_sct.nii.gz", "case4_sct.nii.gz"]
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["counts"] == {"ok": 4, "skipped": 0, "failed": 1, "not_started": 0}
    failed = [c for c in report["cases"] if c["status"] == "failed"]
    assert failed[0]["input"].endswith("case2.nii.gz") and "InputError" in failed[0]["error"]


def test_list_input_and_report(tmp_path, cohort, p2p_weights):
    listing = tmp_path / "cases.csv"
    listing.write_text("path,age\nin/case3.nii.gz,40\nin/case1.nii.gz,50\n")
    res = run("--model", "pix2pix", "--weights", str(p2p_weights), "--in", str(listing),
              "--out", str(tmp_path / "out"), "--seed", "7", "--device", "cpu",
              "--report", str(tmp_path / "run.json"))
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "run.json").read_text())
    from medxlate import __version__
    assert report["medxlate"] == __version__
    assert report["model"]["name"] == "pix2pix"
    assert report["model"]["weights"] == str(p2p_weights)
    assert report["sampler"]["name"] == "one-shot" and report["device"] == "cpu"
    assert [os.path.basename(c["input"]) for c in report["cases"]] == ["case1.nii.gz",
                                                                       "case3.nii.gz"]
    assert [c["seed"] for c in report["cases"]] == [7, 8]
    assert all(c["seconds"] >= 0 and c["shape"] == [24, 24, 4] for c in report["cases"])


def test_absent_device_is_a_usage_error(tmp_path, cohort, p2p_weights):
    device = "cuda:99" if torch.cuda.is_available() else "cuda"
    res = run("--model", "pix2pix", "--weights", str(p2p_weights), "--in",
              str(cohort / "case0.nii.gz"), "--out", str(tmp_path / "o.nii.gz"),
              "--device", device)
    assert res.exit_code == 2 and "device" in res.output
    assert not (tmp_path / "o.nii.gz").exists()
    assert run("--model", "pix2pix", "--weights", str(p2p_weights), "--in",
               str(cohort / "case0.nii.gz"), "--out", str(tmp_path / "o.nii.gz"),
               "--device", "tpu").exit_code == 2


def test_weights_errors(tmp_path, cohort, monkeypatch):
    src = str(cohort / "case0.nii.gz")
    monkeypatch.setenv("MEDXLATE_WEIGHTS_DIR", str(tmp_path / "empty"))
    res = run("--model", "pix2pix", "--in", src, "--out", str(tmp_path / "o.nii.gz"))
    assert res.exit_code == 5 and "--weights" in res.output
    other = make_checkpoint(tmp_path / "cg.safetensors", "cyclegan")
    res = run("--model", "pix2pix", "--weights", str(other), "--in", src, "--out",
              str(tmp_path / "o.nii.gz"))
    assert res.exit_code == 5 and "cyclegan" in res.output
    missing = run("--model", "pix2pix", "--weights", str(tmp_path / "nope.safetensors"),
                  "--in", src, "--out", str(tmp_path / "o.nii.gz"))
    assert missing.exit_code == 5
    assert not (tmp_path / "o.nii.gz").exists()


def test_samples_uncertainty_and_seed(tmp_path, cohort, p2p_weights):
    src = str(cohort / "case0.nii.gz")
    common = ["--model", "pix2pix", "--weights", str(p2p_weights), "--in", src,
              "--samples", "3", "--seed", "11"]
    a = run(*common, "--out", str(tmp_path / "a.nii.gz"), "--uncertainty",
            str(tmp_path / "a_std.nii.gz"))
    b = run(*common, "--out", str(tmp_path / "b.nii.gz"))
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    mean_a = read_volume(tmp_path / "a.nii.gz")
    std = read_volume(tmp_path / "a_std.nii.gz")
    assert std.same_grid(mean_a)
    assert (std.array >= 0).all() and std.array.max() > 0
    np.testing.assert_array_equal(mean_a.array, read_volume(tmp_path / "b.nii.gz").array)
    outside = mean_a.array == -1024.0
    assert outside.any() and (std.array[outside] == 0).all()
    c = run(*common[:-1], "12", "--out", str(tmp_path / "c.nii.gz"))
    assert c.exit_code == 0
    assert not np.array_equal(mean_a.array, read_volume(tmp_path / "c.nii.gz").array)
    assert run("--model", "pix2pix", "--weights", str(p2p_weights), "--in", src, "--out",
               str(tmp_path / "d.nii.gz"), "--uncertainty", str(tmp_path / "d_std.nii.gz")
               ).exit_code == 2


def test_deterministic_model_refuses_samples(tmp_path, cohort):
    cg = make_checkpoint(tmp_path / "cg.safetensors", "cyclegan")
    res = run("--model", "cyclegan", "--weights", str(cg), "--in",
              str(cohort / "case0.nii.gz"), "--out", str(tmp_path / "o.nii.gz"),
              "--samples", "2")
    assert res.exit_code == 2 and "deterministic" in res.output
    both = [run("--model", "cyclegan", "--weights", str(cg), "--in",
                str(cohort / "case0.nii.gz"), "--out", str(tmp_path / f"{d}.nii.gz"),
                "--direction", d).exit_code for d in ("mri2ct", "ct2mri")]
    assert both == [0, 0]
    mr2ct, ct2mr = (read_volume(tmp_path / f"{d}.nii.gz").array for d in ("mri2ct", "ct2mri"))
    assert not np.allclose(mr2ct, ct2mr)  # two different generators ran


def test_shipped_weights_are_sha256_verified(tmp_path, cohort, monkeypatch, p2p_weights):
    import dataclasses
    import shutil

    from medxlate.models import registry
    from medxlate.weights import write_manifest_entry

    spec = dataclasses.replace(registry.get_spec("pix2pix"), weights="p2p_demo.safetensors")
    monkeypatch.setattr(registry, "get_spec", lambda name: spec)
    shipped = tmp_path / "weights"
    shipped.mkdir()
    shutil.copy(p2p_weights, shipped / "p2p_demo.safetensors")
    write_manifest_entry(shipped / "p2p_demo.safetensors", "pix2pix", "demo")
    monkeypatch.setenv("MEDXLATE_WEIGHTS_DIR", str(shipped))
    src = str(cohort / "case0.nii.gz")
    ok = run("--model", "pix2pix", "--in", src, "--out", str(tmp_path / "a.nii.gz"),
             "--report", str(tmp_path / "run.json"))
    assert ok.exit_code == 0, ok.output
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["model"]["weights"] == str(shipped / "p2p_demo.safetensors")
    with open(shipped / "p2p_demo.safetensors", "r+b") as fh:  # flip one byte of a tensor
        fh.seek(-3, 2)
        byte = fh.read(1)
        fh.seek(-3, 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    bad = run("--model", "pix2pix", "--in", src, "--out", str(tmp_path / "b.nii.gz"))
    assert bad.exit_code == 5 and "sha256" in bad.output
    assert not (tmp_path / "b.nii.gz").exists()


def test_cohort_uncertainty_goes_into_a_folder(tmp_path, cohort, p2p_weights):
    res = run("--model", "pix2pix", "--weights", str(p2p_weights), "--in", str(cohort),
              "--out", str(tmp_path / "out"), "--num-parts", "5", "--part-id", "3",
              "--samples", "2", "--uncertainty", str(tmp_path / "std"), "--seed", "1")
    assert res.exit_code == 0, res.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["case3_sct.nii.gz"]
    std = read_volume(tmp_path / "std" / "case3_sct_std.nii.gz")
    assert std.same_grid(read_volume(cohort / "case3.nii.gz")) and std.array.min() >= 0
