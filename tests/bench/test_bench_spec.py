"""Bench spec validation: one clear line and a documented exit code, nothing written."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from medxlate.bench import load_spec, select
from medxlate.cli.main import app

runner = CliRunner()

GOOD = """
direction: mr->ct
cohort:
  phantom: {seed: 1, train: 2}
  test: {seed: 2, subjects: 1}
models:
  - {model: pix2pix, steps: 10}
"""


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("steps: 10", "steps: ten", "models[0].steps: expected a positive integer, got 'ten'"),
    ("steps: 10", "steps: 0", "models[0].steps: expected a positive integer, got 0"),
    ("model: pix2pix", "model: pix3pix", "models[0].model: unknown model 'pix3pix'"),
    ("direction: mr->ct", "direction: t1->t2", "direction: direction 't1->t2' is not supported"),
    ("steps: 10", "stepz: 10", "models[0]: unknown key 'stepz'"),
    ("{model: pix2pix, steps: 10}", "{model: pix2pix}", "models[0]: give steps or minutes"),
    ("{model: pix2pix, steps: 10}", "{model: ddpm, steps: 10, sampler: adversarial}",
     "models[0].sampler: ddpm cannot use 'adversarial'"),
    ("{model: pix2pix, steps: 10}", "{model: pix2pix, weights: shipped, steps: 10}",
     "models[0]: weights: given, so nothing is trained"),
    ("test: {seed: 2, subjects: 1}", "test: {seed: 1, subjects: 1}",
     "cohort.test.seed: held-out phantoms need another seed"),
    ("phantom: {seed: 1, train: 2}", "phantom: {seed: 1, train: 2}\n  dataset: x",
     "cohort: give exactly one of phantom, dataset, layout (got phantom, dataset)"),
    ("models:\n  - {model: pix2pix, steps: 10}", "models:\n  - {model: pix2pix, steps: 10}\n"
     "  - {model: pix2pix, steps: 20}", "models: two rows share the label 'pix2pix'"),
    ("steps: 10", "steps: 10, tta: maybe", "models[0].tta: expected true or false, got 'maybe'"),
    ("steps: 10", "steps: 10, label: 'a, b'",
     "models[0].label: 'a, b': a label has no comma (--models splits on commas)"),
])
def test_bad_spec_is_one_line_and_exit_2(tmp_path, old, new, expected):
    assert old in GOOD
    spec = tmp_path / "bench.yaml"
    spec.write_text(GOOD.replace(old, new))
    work = tmp_path / "W"
    result = runner.invoke(app, ["bench", "--spec", str(spec), "--workdir", str(work)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("medxlate: error: bench.yaml: "), lines[0]
    assert expected in lines[0]
    assert not work.exists()


def test_unparsable_yaml_is_exit_3(tmp_path):
    spec = tmp_path / "bench.yaml"
    spec.write_text("cohort: [unclosed\n")
    result = runner.invoke(app, ["bench", "--spec", str(spec), "--workdir", str(tmp_path / "W")])
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot read the bench spec" in lines[0]


def test_unknown_spec_name_lists_the_shipped_ones(tmp_path):
    result = runner.invoke(app, ["bench", "--spec", "nonesuch", "--workdir", str(tmp_path)])
    assert result.exit_code == 2
    assert "shipped: readme, readme-dose, real-anatomy, small" in result.stderr


def test_models_option_names_a_missing_row(tmp_path):
    result = runner.invoke(app, ["bench", "--spec", "small", "--workdir", str(tmp_path / "W"),
                                 "--models", "pix2pix-tiny,nope"])
    assert result.exit_code == 2
    assert "--models nope: not in small.yaml" in result.stderr
    assert not (tmp_path / "W").exists()


def test_shipped_specs_load_and_overrides_apply():
    readme = load_spec("readme")
    assert all(m.weights == "shipped" for m in readme.models)
    assert {m.direction for m in readme.models} == {"mr->ct", "ct->mr"}
    small = load_spec("small")
    assert [m.steps for m in select(small, None, None, 7)] == [7, 7]
    picked = select(small, ["cyclegan"], 2.5, None)
    assert [(m.label, m.minutes, m.steps) for m in picked] == [("cyclegan-tiny", 2.5, None)]
    # shipped rows keep their weights under a budget override
    assert select(readme, ["pix2pix"], None, 5)[0].steps is None


def test_readme_dose_spec_is_readmes_cohort_with_photon_dose_columns():
    spec = load_spec("readme-dose")
    assert spec.name == "readme-dose" and spec.cohort == load_spec("readme").cohort
    assert spec.cohort["test"] == {"seed": 7, "subjects": [0, 1, 2]}
    assert spec.cohort["phantom"] == {"region": "brain", "seed": 2026, "train": 8}
    assert [(m.model, m.weights, m.direction, m.steps) for m in spec.models] == [
        ("unet-3d", "shipped", "mr->ct", None), ("unet-2.5d", "shipped", "mr->ct", None),
        ("syndiff", "shipped", "mr->ct", None), ("pix2pix", "shipped", "mr->ct", None)]
    # README's dose table: label 10, 60 Gy/30 fx, 5 photon fields, 4 mm dose grid, and the
    # intensity map and floor rows scored too
    assert spec.dose == {"modality": "photon", "prescription_gy": 60.0, "fractions": 30,
                         "target": "label:10", "beams": [0.0, 72.0, 144.0, 216.0, 288.0],
                         "dose_grid_mm": 4.0, "ct_grid_mm": 2.0, "calibration": None,
                         "references": True}
    assert [m.label for m in select(spec, ["pix2pix"], None, None)] == ["pix2pix"]


def test_tta_key_parses_and_readme_has_a_tta_row(tmp_path):
    spec_file = tmp_path / "b.yaml"
    spec_file.write_text(GOOD.replace("steps: 10}", "steps: 10, tta: true}"))
    entry = load_spec(str(spec_file)).models[0]
    assert entry.tta is True
    readme = load_spec("readme")
    assert [m.tta for m in readme.models if m.model == "unet-2.5d"] == [False, True]


REAL = """
direction: mr->ct
cohort:
  phantom: {labels: maps, scheme: synthseg, seed: 1, train: 2, spacing: [2, 2, 2]}
  test: {seed: 2, subjects: 2, spacing: [1, 1, 1], contrast: both}
models:
  - {model: unet-2.5d, weights: shipped}
"""


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("labels: maps", "labels: ''", "cohort.phantom.labels: expected a folder of label maps"),
    ("labels: maps, scheme: synthseg", "scheme: synthseg",
     "cohort.phantom.scheme: only with labels"),
    ("labels: maps,", "labels: maps, region: pelvis,",
     "cohort.phantom.region: real-anatomy phantoms are heads"),
    ("contrast: both", "contrast: t3", "cohort.test.contrast: expected t1, t2, both, got 't3'"),
    ("seed: 1,", "seed: 1, contrast: both,",
     "cohort.phantom.contrast: expected t1 or t2 (the MR the trained rows learn from)"),
    ("contrast: both", "contrasts: [t1, t2]", "cohort.test: unknown key 'contrasts'"),
    ("spacing: [1, 1, 1]", "spacing: [1, 1]",
     "cohort.test.spacing: expected three positive numbers, got [1, 1]"),
    ("scheme: synthseg", "scheme: ''", "cohort.phantom.scheme: expected synthseg, freesurfer"),
    ("models:", "dose: {modality: photon, prescription: 60Gy/30fx, target: 'label:10'}\nmodels:",
     "dose: dose columns are for cohorts of one MR contrast"),
])
def test_bad_real_anatomy_keys_are_one_line_and_exit_2(tmp_path, old, new, expected):
    assert old in REAL
    spec = tmp_path / "bench.yaml"
    spec.write_text(REAL.replace(old, new))
    work = tmp_path / "W"
    result = runner.invoke(app, ["bench", "--spec", str(spec), "--workdir", str(work)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0], lines[0]
    assert not work.exists()


def test_labels_path_is_taken_from_the_current_directory(tmp_path, monkeypatch):
    (tmp_path / "specs").mkdir()
    spec_file = tmp_path / "specs" / "b.yaml"
    spec_file.write_text(REAL)
    monkeypatch.chdir(tmp_path)
    spec = load_spec(str(spec_file))
    ph = spec.cohort["phantom"]
    assert ph["labels"] == str(tmp_path / "maps")        # not tmp_path/specs/maps
    assert ph["scheme"] == "synthseg"
    assert spec.cohort["test"] == {"seed": 2, "subjects": [0, 1], "spacing": [1, 1, 1],
                                   "contrast": "both"}
    # a YAML scheme file is a path too, from the current directory
    spec_file.write_text(REAL.replace("scheme: synthseg", "scheme: mine.yaml"))
    assert load_spec(str(spec_file)).cohort["phantom"]["scheme"] == str(tmp_path / "mine.yaml")


def test_missing_label_folder_is_exit_3_before_anything_is_written(tmp_path, monkeypatch):
    spec_file = tmp_path / "b.yaml"
    spec_file.write_text(REAL)
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "W"
    result = runner.invoke(app, ["bench", "--spec", str(spec_file), "--workdir", str(work)])
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert (f"cohort.phantom.labels {tmp_path / 'maps'}: no such folder (a relative path is "
            f"taken from the current directory, {tmp_path}; or give --labels)") in lines[0]
    assert not work.exists()
    # an empty folder: no maps, also exit 3
    (tmp_path / "maps").mkdir()
    result = runner.invoke(app, ["bench", "--spec", str(spec_file), "--workdir", str(work)])
    assert result.exit_code == 3 and "no label maps" in result.stderr
    assert not work.exists()


def test_labels_option_replaces_the_folder_and_needs_a_real_anatomy_spec(tmp_path):
    from medxlate.bench.spec import with_labels

    spec = with_labels(load_spec("real-anatomy"), tmp_path / "elsewhere")
    assert spec.cohort["phantom"]["labels"] == str(tmp_path / "elsewhere")
    assert [m.label for m in spec.models] == [
        "unet-3d (3D regression U-Net)", "unet-3d --tta (mirroring)",
        "unet-2.5d (regression U-Net)", "unet-2.5d --tta (mirroring)",
        "unet-2.5d-any (any contrast)", "syndiff (paired variant)", "pix2pix"]
    assert all(m.weights == "shipped" for m in spec.models)
    work = tmp_path / "W"
    result = runner.invoke(app, ["bench", "--spec", "small", "--workdir", str(work),
                                 "--labels", str(tmp_path)])
    assert result.exit_code == 2
    assert "--labels: small.yaml has no real-anatomy cohort" in result.stderr
    assert not work.exists()
