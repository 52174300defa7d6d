"""Phantoms from real label maps: tissue mapping, signal equations, warps, seeds, refusals."""

import json
import math
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from medxlate.cli.main import app
from medxlate.phantom.deform import Warp, warp_image
from medxlate.phantom.label_mr import flair_ti, inversion_recovery
from medxlate.phantom.label_subject import LabelPhantomConfig, make_label_subject
from medxlate.phantom.labels import class_lut, scheme, split_maps
from medxlate.phantom.mr import spin_echo, spoiled_gre

from tests.conftest import SHARED_DATA

# ../shared/data/synthseg-head-labels; MEDXLATE_LABEL_MAPS points elsewhere (a worktree).
MAPS = Path(os.environ.get("MEDXLATE_LABEL_MAPS", SHARED_DATA / "synthseg-head-labels"))
runner = CliRunner()

# Nested shells of a constructed head (radius in mm, SynthSeg label), outermost first.
SHELLS = [(54, 511), (51, 507), (48, 515), (45, 516), (42, 515), (39, 24), (32, 3), (24, 2)]


def head_map(shape=(56, 56, 56), spacing=2.0) -> np.ndarray:
    """A sphere head: skin, soft tissue, cortical/cancellous/cortical skull, CSF, GM, WM."""
    grid = np.indices(shape).astype(float)
    r = np.sqrt(sum((g - (n - 1) / 2) ** 2 for g, n in zip(grid, shape))) * spacing
    labels = np.zeros(shape, np.int16)
    for radius, label in SHELLS:
        labels[r < radius] = label
    return labels


def write_map(path: Path, labels: np.ndarray, spacing: float = 2.0, dtype=None) -> Path:
    affine = np.diag([spacing, spacing, spacing, 1.0])
    img = nib.Nifti1Image(labels.astype(dtype or labels.dtype), affine)
    nib.save(img, str(path))
    return path


@pytest.fixture(scope="module")
def head_file(tmp_path_factory) -> Path:
    return write_map(tmp_path_factory.mktemp("maps") / "head.nii.gz", head_map())


def small_config(path: Path, **kw) -> LabelPhantomConfig:
    base = {"spacing": (2.0, 2.0, 2.0), "misalign_deg": 5.0, "misalign_mm": 5.0}
    return LabelPhantomConfig(labels=path, **{**base, **kw})


# -- label -> tissue mapping ------------------------------------------------------------

def test_scheme_maps_known_synthseg_labels_to_tissues():
    lut = class_lut(scheme("synthseg"))
    names = {2: "white_matter", 41: "white_matter", 3: "grey_matter", 24: "csf",
             515: "cortical_bone", 516: "cancellous_bone", 506: "vitreous", 0: "background"}
    table = scheme("synthseg")
    assert {k: table[k] for k in names} == names
    assert lut[2] == lut[41] and lut[515] != lut[516]
    assert 515 not in scheme("freesurfer")  # aseg has no skull


def test_ct_from_constructed_map_has_literature_hu(head_file):
    s = make_label_subject(small_config(head_file, deformation_mm=0.0), seed=3, index=0)
    source = s.extra["labels_source"].array
    ct = s.ct_on_mr.array
    # Literature ranges (the list; Schneider et al. 2000), widened by 10 HU for the
    # scanner noise and blur left in a median over a few hundred voxels.
    expected = {2: (25, 30), 3: (35, 45), 24: (5, 15)}
    for label, (lo, hi) in expected.items():
        core = (source == label)
        core &= np.roll(core, 1, 0) & np.roll(core, -1, 0) & np.roll(core, 1, 1)
        core &= np.roll(core, -1, 1) & np.roll(core, 1, 2) & np.roll(core, -1, 2)
        assert core.sum() > 50, label
        assert lo - 10 <= float(np.median(ct[core])) <= hi + 10, label
    bone = source == 515
    assert 700 < float(np.percentile(ct[bone], 90)) < 2100
    outside = source == 0
    assert float(np.median(ct[outside])) < -950


# -- signal equations against hand-computed values ---------------------------------------

def test_spin_echo_hand_computed_for_wm_and_csf():
    # WM at 1.5 T: PD 0.69, T1 884 ms, T2 72 ms; CSF: PD 1.0, T1 4000 ms, T2 2000 ms.
    tr, te = 500.0, 15.0
    wm = 0.69 * (1 - 2 * math.exp(-(500 - 7.5) / 884) + math.exp(-500 / 884)) * math.exp(-15 / 72)
    csf = 1.0 * (1 - 2 * math.exp(-(500 - 7.5) / 4000) + math.exp(-500 / 4000)) \
        * math.exp(-15 / 2000)
    assert spin_echo(0.69, 884, 72, tr, te) == pytest.approx(wm, rel=1e-12)
    assert spin_echo(1.0, 4000, 2000, tr, te) == pytest.approx(csf, rel=1e-12)
    assert wm == pytest.approx(0.2366, abs=1e-4)  # by hand: 0.69 * 0.42229 * 0.81194
    assert csf == pytest.approx(0.1133, abs=1e-4)  # 0.11420 * 0.99253; T1w: WM > CSF


def test_gradient_echo_and_inversion_recovery_hand_computed():
    # Spoiled GRE, WM, TR 20 ms, TE 4 ms, 25 deg, T2* 45 ms.
    e1 = math.exp(-20 / 884)
    a = math.radians(25)
    wm = 0.69 * math.sin(a) * (1 - e1) / (1 - math.cos(a) * e1) * math.exp(-4 / 45)
    assert spoiled_gre(0.69, 884, 45, 20, 4, 25) == pytest.approx(wm, rel=1e-12)
    # FLAIR: TR 9000, TE 100; CSF (T1 4000) nulled at TI = T1 ln(2 / (1 + exp(-TR/T1))).
    ti = flair_ti(4000, 9000)
    assert ti == pytest.approx(4000 * math.log(2 / (1 + math.exp(-9000 / 4000))), rel=1e-12)
    assert inversion_recovery(1.0, 4000, 2000, 9000, ti, 100) == pytest.approx(0, abs=1e-12)
    wm_ir = 0.69 * abs(1 - 2 * math.exp(-ti / 884) + math.exp(-9000 / 884)) * math.exp(-100 / 72)
    assert inversion_recovery(0.69, 884, 72, 9000, ti, 100) == pytest.approx(wm_ir, rel=1e-12)


# -- deformations keep label topology ------------------------------------------------------

def test_identity_warp_returns_map_unchanged():
    labels = head_map((30, 34, 28)).astype(np.float32)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = (-30, -34, -28)
    out = warp_image(labels, affine, Warp.identity(), affine, labels.shape, order=0)
    assert np.array_equal(out, labels)


def test_random_warp_creates_no_new_label():
    labels = head_map((40, 40, 40)).astype(np.float32)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    for seed in range(3):
        warp = Warp.random(np.random.default_rng(seed), center=(39, 39, 39), deformation_mm=4.0)
        out = warp_image(labels, affine, warp, affine, labels.shape, order=0)
        assert set(np.unique(out)) <= set(np.unique(labels))
        assert len(np.unique(out)) == len(np.unique(labels))  # every shell survives
        assert not np.array_equal(out, labels)


@pytest.mark.skipif(not MAPS.is_dir(), reason=f"real label maps absent ({MAPS})")
def test_real_map_warp_keeps_its_labels():
    s = make_label_subject(small_config(MAPS / "training_seg_17.nii.gz",
                                        spacing=(3.0, 3.0, 3.0)), seed=0, index=0)
    original = set(np.unique(np.asarray(nib.load(MAPS / "training_seg_17.nii.gz").dataobj))
                   .astype(int).tolist())
    warped = set(np.unique(s.extra["labels_source"].array).astype(int).tolist())
    assert warped <= original and len(warped) > 40


# -- seeds -----------------------------------------------------------------------------------

def test_seeded_generation_is_bit_identical(head_file):
    cfg = small_config(head_file, contrasts=("t1w", "t2w"))
    a, b = make_label_subject(cfg, 5, 1), make_label_subject(cfg, 5, 1)
    for x, y in [(a.ct, b.ct), (a.mr["t1w"], b.mr["t1w"]), (a.mr["t2w"], b.mr["t2w"]),
                 (a.labels, b.labels), (a.ct_on_mr, b.ct_on_mr)]:
        assert np.array_equal(x.array, y.array) and np.array_equal(x.affine, y.affine)
    assert json.dumps(a.truth) == json.dumps(b.truth)
    c = make_label_subject(cfg, 6, 1)
    assert not np.array_equal(a.ct.array, c.ct.array) if a.ct.shape == c.ct.shape else True
    # --contrast leaves the CT and the T1w unchanged
    t1_only = make_label_subject(small_config(head_file), 5, 1)
    assert np.array_equal(t1_only.mr["t1w"].array, a.mr["t1w"].array)
    assert np.array_equal(t1_only.ct.array, a.ct.array)


def test_random_mode_draws_other_contrasts(head_file):
    cfg = small_config(head_file, mr_mode="random")
    a, b = make_label_subject(cfg, 0, 0), make_label_subject(cfg, 0, 1)
    means_a = a.truth["mr"]["protocols"]["random"]["mean"]
    means_b = b.truth["mr"]["protocols"]["random"]["mean"]
    assert means_a != means_b and list(a.mr) == ["random"]


# -- split rule ---------------------------------------------------------------------------

def test_split_holds_out_the_last_fifth_by_name():
    maps = [Path(f"training_seg_{i:02d}.nii.gz") for i in range(1, 21)]
    train, held = split_maps(maps, "train"), split_maps(maps, "held-out")
    assert [p.name[13:15] for p in held] == ["17", "18", "19", "20"]
    assert len(train) == 16 and not set(train) & set(held)


# -- refusals --------------------------------------------------------------------------------

def _refused(tmp_path, labels, dtype=None, scheme_name="synthseg"):
    path = write_map(tmp_path / "bad.nii.gz", labels, dtype=dtype)
    out = tmp_path / "out"
    res = runner.invoke(app, ["phantom", "--labels", str(path), "--label-scheme", scheme_name,
                              "--out", str(out), "--spacing", "2", "2", "2"])
    assert not out.exists()
    return res


def test_unknown_labels_refused(tmp_path):
    labels = head_map()
    labels[:4, :4, :4] = 999
    res = _refused(tmp_path, labels)
    assert res.exit_code == 3
    assert res.output.strip().count("\n") == 0 and "999" in res.output
    assert "not in the label scheme" in res.output


def test_non_integer_map_refused(tmp_path):
    res = _refused(tmp_path, head_map().astype(np.float32) + 0.25, dtype=np.float32)
    assert res.exit_code == 3 and "non-integer" in res.output
    assert res.output.strip().count("\n") == 0


def test_empty_map_refused(tmp_path):
    res = _refused(tmp_path, np.zeros((20, 20, 20), np.int16))
    assert res.exit_code == 3 and "empty" in res.output
    assert res.output.strip().count("\n") == 0


def test_yaml_scheme_maps_own_labels(tmp_path):
    labels = np.zeros((40, 40, 40), np.int16)
    labels[8:32, 8:32, 8:32] = 1
    labels[14:26, 14:26, 14:26] = 2
    path = write_map(tmp_path / "own.nii.gz", labels)
    yaml_file = tmp_path / "scheme.yaml"
    yaml_file.write_text("labels:\n  0: background\n  1: cortical_bone\n  2: csf\n")
    out = tmp_path / "cohort"
    res = runner.invoke(app, ["phantom", "--labels", str(path), "--label-scheme", str(yaml_file),
                              "--out", str(out), "--spacing", "2", "2", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    src = nib.load(out / "head-000" / "labels_source.nii.gz").get_fdata()
    ct = nib.load(out / "head-000" / "ct_on_mr.nii.gz").get_fdata()
    from scipy import ndimage

    csf_core = ndimage.binary_erosion(src == 2, iterations=2)  # away from partial volume
    assert float(np.median(ct[csf_core])) < 40 and float(np.median(ct[src == 1])) > 900
    bad = tmp_path / "bad.yaml"
    bad.write_text("1: marble\n")
    res = runner.invoke(app, ["phantom", "--labels", str(path), "--label-scheme", str(bad),
                              "--out", str(tmp_path / "x")])
    assert res.exit_code == 3 and "marble" in res.output


@pytest.mark.skipif(not MAPS.is_dir(), reason=f"real label maps absent ({MAPS})")
def test_cli_held_out_cohort_from_real_maps(tmp_path):
    out = tmp_path / "real"
    res = runner.invoke(app, ["phantom", "--labels", str(MAPS), "--split", "held-out",
                              "--out", str(out), "--subjects", "1", "--spacing", "4", "4", "4",
                              "--contrast", "both", "--quiet"])
    assert res.exit_code == 0, res.output
    folder = out / "head-000"
    names = {p.name for p in folder.iterdir()}
    assert {"mr.nii.gz", "mr_t1.nii.gz", "mr_t2.nii.gz", "ct.nii.gz", "ct_on_mr.nii.gz",
            "mask.nii.gz", "labels.nii.gz", "labels_ct.nii.gz", "labels_source.nii.gz",
            "truth.json"} == names
    truth = json.loads((folder / "truth.json").read_text())
    assert truth["source"]["label_map"] == "training_seg_17.nii.gz"
    ct = nib.load(folder / "ct_on_mr.nii.gz").get_fdata()
    src = nib.load(folder / "labels_source.nii.gz").get_fdata()
    brain = (src >= 2) & (src <= 60)
    assert float(np.median(ct[brain])) == pytest.approx(30, abs=15)
    assert float(np.median(ct[src == 515])) > 500
