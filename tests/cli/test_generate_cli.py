"""`medxlate generate`: N NIfTI slices with the training spacing, seed-reproducible, a
report, --stack, exit codes; and `evaluate --distribution` on the generated folder."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.models.registry import get_spec
from medxlate.intensity import DEFAULT_NORMALISATION
from medxlate.weights import CheckpointMeta, save_checkpoint

SPACING = [1.5, 1.25, 2.0]
runner = CliRunner()


def _checkpoint(path: Path, **over) -> Path:
    """A random tiny mt-ddpm checkpoint as the engine writes it (unconditional CT)."""
    spec = get_spec("mt-ddpm")
    cfg = {**spec.config("demo"), "slice_size": [16, 16], "model_channels": 8,
           "channel_mult": [1, 2], "res_blocks": 1, "head_channels": 8, "window": 4,
           "diffusion_steps": 40, "sampling_steps": 4, "pairing": "unconditional",
           "source": "none", "target": "ct", **over}
    family = spec.load_entry()
    torch.manual_seed(0)
    nets = family.build(cfg)
    tensors = {f"net.{k}": v for k, v in nets["net"].state_dict().items()}
    save_checkpoint(path, tensors, CheckpointMeta(
        model="mt-ddpm", config=cfg, normalisation=DEFAULT_NORMALISATION,
        data={"spacing_mm": SPACING, "slice_axis": 2}))
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return _checkpoint(tmp_path_factory.mktemp("w") / "gen.safetensors")


def _generate(weights: Path, out: Path, *extra: str):
    return runner.invoke(app, ["generate", "--model", "mt-ddpm", "--weights", str(weights),
                               "--out", str(out), "--n", "5", "--batch-size", "2",
                               "--device", "cpu", "--quiet", *extra])


def test_generate_writes_n_slices_with_training_spacing_and_is_seeded(weights, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert _generate(weights, a, "--seed", "3").exit_code == 0
    assert _generate(weights, b, "--seed", "3").exit_code == 0
    assert _generate(weights, c, "--seed", "4").exit_code == 0
    files = sorted(a.glob("gen_*.nii.gz"))
    assert [f.name for f in files] == [f"gen_{i:05d}.nii.gz" for i in range(5)]
    img = nib.load(files[0])
    assert img.shape == (16, 16, 1)
    assert np.allclose(img.header.get_zooms(), SPACING)
    assert np.allclose(img.affine, np.diag([*SPACING, 1.0]))
    arrays = {d: np.stack([nib.load(f).get_fdata() for f in sorted(d.glob("gen_*"))])
              for d in (a, b, c)}
    assert np.array_equal(arrays[a], arrays[b])           # same seed: bit-identical
    assert not np.allclose(arrays[a], arrays[c])
    # CT comes out in HU inside the dataset window (x0 clipped to [-1, 1]).
    assert arrays[a].min() >= -1024.0 - 1e-3 and arrays[a].max() <= 3000.0 + 1e-3
    report = json.loads((a / "generate.json").read_text())
    assert report["n"] == 5 and report["seed"] == 3 and report["sampler"] == "respaced"
    assert report["steps"] == 4 and report["spacing_mm"] == SPACING
    assert report["translation"] == "none->ct"


def test_slices_do_not_depend_on_batch_size_or_count(weights, tmp_path):
    # Slice i draws from its own (seed, i) generator (medxlate.diffusion.noise).
    torch.set_num_threads(1)
    by2, by5, first3 = tmp_path / "by2", tmp_path / "by5", tmp_path / "first3"
    assert _generate(weights, by2, "--seed", "3").exit_code == 0
    assert _generate(weights, by5, "--seed", "3", "--batch-size", "5").exit_code == 0
    assert _generate(weights, first3, "--seed", "3", "--n", "3").exit_code == 0
    arrays = {d: np.stack([nib.load(f).get_fdata() for f in sorted(d.glob("gen_*"))])
              for d in (by2, by5, first3)}
    np.testing.assert_allclose(arrays[by5], arrays[by2], rtol=0, atol=0.05)  # HU
    np.testing.assert_allclose(arrays[first3], arrays[by2][:3], rtol=0, atol=0.05)
    assert np.abs(arrays[by2][0] - arrays[by2][1]).max() > 1.0  # slices differ from each other


def test_generate_stack_and_refusals(weights, tmp_path):
    stack = tmp_path / "stack.nii.gz"
    result = _generate(weights, stack, "--stack", "--sampler", "ddim", "--steps", "2")
    assert result.exit_code == 0, result.output
    img = nib.load(stack)
    assert img.shape == (16, 16, 5) and np.allclose(img.header.get_zooms(), SPACING)
    assert (tmp_path / "stack.json").is_file()
    # The output exists: exit 4 without --overwrite; a folder of someone else's files stays.
    assert _generate(weights, stack, "--stack").exit_code == 4
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert _generate(weights, foreign, "--overwrite").exit_code == 4
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert _generate(weights, tmp_path / "x", "--n", "0").exit_code == 2
    assert _generate(weights, tmp_path / "x", "--sampler", "adversarial").exit_code == 2
    # A conditional (MR->CT) checkpoint cannot generate: exit 5, nothing written.
    cond = _checkpoint(tmp_path / "cond.safetensors", pairing="paired", source="mr")
    result = _generate(cond, tmp_path / "y")
    assert result.exit_code == 5 and "unconditional" in result.output
    assert not (tmp_path / "y").exists()


def test_evaluate_distribution_on_generated_slices(weights, tmp_path):
    gen = tmp_path / "gen"
    assert _generate(weights, gen, "--n", "6").exit_code == 0
    out, csv = tmp_path / "d.json", tmp_path / "d.csv"
    args = ["evaluate", "--distribution", "--pred", str(gen), "--ref", str(gen),
            "--out", str(out), "--csv", str(csv)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["metrics"]["ds"] == pytest.approx(0.0, abs=1e-9)   # a set against itself
    assert report["generated"]["slices"] == 6
    assert csv.read_text().splitlines()[0].endswith("fds,ds")
    failing = runner.invoke(app, [*args[:6], "--fail-if", "ds>-1"])
    assert failing.exit_code == 6
    assert runner.invoke(app, [*args[:6], "--fail-if", "fid>50"]).exit_code == 2  # no weights


def test_mt_ddpm_synthesizes_mr_to_ct_on_the_input_grid_and_refuses_generators(weights,
                                                                               tmp_path):
    # A conditional checkpoint translates through `medxlate synthesize` like every 2D model.
    from tests.synth.conftest import phantom_mr, write_nifti

    affine = np.array([[0.0, 0.0, 2.5, -10.0], [-1.2, 0.0, 0.0, 30.0],
                       [0.0, 1.1, 0.0, -5.0], [0.0, 0.0, 0.0, 1.0]])
    mr = write_nifti(tmp_path / "mr.nii.gz", phantom_mr((20, 18, 6)), affine)
    cond = _checkpoint(tmp_path / "cond.safetensors", pairing="paired", source="mr")
    out = tmp_path / "sct.nii.gz"
    result = runner.invoke(app, ["synthesize", "--model", "mt-ddpm", "--weights", str(cond),
                                 "--in", str(mr), "--out", str(out), "--sampler", "ddim",
                                 "--steps", "2", "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    img, src = nib.load(out), nib.load(mr)
    assert img.shape == src.shape and np.allclose(img.affine, src.affine)
    data = img.get_fdata()
    assert data.min() >= -1024.0 - 1e-3 and data.max() <= 3000.0 + 1e-3
    # An unconditional checkpoint has no source to translate: synthesize says so (exit 2).
    refused = runner.invoke(app, ["synthesize", "--model", "mt-ddpm", "--weights", str(weights),
                                  "--in", str(mr), "--out", str(tmp_path / "x.nii.gz"),
                                  "--device", "cpu", "--quiet"])
    assert refused.exit_code == 2 and "generate" in refused.output


def test_report_or_out_on_the_weights_file_is_refused(tmp_path):
    """generate never writes its input: --report/--out equal to --weights exit 2 untouched."""
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"not really weights, and must stay so")
    for extra in (["--out", str(tmp_path / "gen"), "--report", str(weights)],
                  ["--out", str(tmp_path / "gen.nii.gz"), "--stack", "--report", str(weights)]):
        res = runner.invoke(app, ["generate", "--model", "mt-ddpm", "--weights", str(weights),
                                  "--n", "1", *extra])
        assert res.exit_code == 2, res.output
        assert "never writes its inputs" in res.output or "is the input" in res.output
        assert weights.read_bytes() == b"not really weights, and must stay so"
