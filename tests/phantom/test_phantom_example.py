"""The committed example subject (examples/brain-000) loads, matches its truth.json and is
what the documented command produces."""

from pathlib import Path

import numpy as np
from phantom_cases import dice

from medxlate.io import read_volume
from medxlate.phantom import PhantomConfig, load_truth, make_subject
from medxlate.phantom.tissues import label_of

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "brain-000"


def test_example_files_match_truth():
    truth = load_truth(EXAMPLE)
    assert truth["id"] == "brain-000" and truth["region"] == "brain" and truth["seed"] == 4
    grids = truth["grids"]
    for name, grid in (("mr", "mr"), ("ct", "ct"), ("ct_on_mr", "mr"), ("mask", "mr"),
                       ("labels", "mr"), ("labels_ct", "ct")):
        vol = read_volume(EXAMPLE / f"{name}.nii.gz")
        assert list(vol.shape) == grids[grid]["shape"], name
        assert np.allclose(vol.affine, grids[grid]["affine"], atol=1e-5), name
    assert grids["mr"]["shape"] == [112, 128, 96] and grids["mr"]["spacing_mm"] == [1.6] * 3
    labels = read_volume(EXAMPLE / "labels.nii.gz").array
    ct_on_mr = read_volume(EXAMPLE / "ct_on_mr.nii.gz").array
    bone = labels == label_of("cortical_bone")
    assert np.median(ct_on_mr[bone]) > 700
    brain = np.isin(labels, [label_of("grey_matter"), label_of("white_matter")])
    assert 20 < np.median(ct_on_mr[brain]) < 50
    mask = read_volume(EXAMPLE / "mask.nii.gz").array
    assert mask[labels > 1].min() == 1


def test_example_is_reproduced_by_its_command():
    # examples/README.md: medxlate phantom --out examples --subjects 1 --region brain --seed 4
    #                     --size 112 128 96 --spacing 1.6 1.6 1.6
    s = make_subject(PhantomConfig("brain", size=(112, 128, 96), spacing=(1.6, 1.6, 1.6)), 4, 0)
    labels = read_volume(EXAMPLE / "labels.nii.gz").array
    assert (s.labels.array == labels).mean() > 0.999
    structure = [label_of("grey_matter"), label_of("white_matter")]
    assert dice(np.isin(s.labels.array, structure), np.isin(labels, structure)) > 0.999
    ct = read_volume(EXAMPLE / "ct.nii.gz").array
    assert float(np.abs(s.ct.array - ct).mean()) < 0.5
    assert np.allclose(s.truth["transform"]["mr_to_ct"],
                       load_truth(EXAMPLE)["transform"]["mr_to_ct"], atol=1e-9)
