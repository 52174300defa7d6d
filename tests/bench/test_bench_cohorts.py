"""A user's own cohort: a SynthRAD-layout folder, and the dataset preprocess made of it."""

from __future__ import annotations

import numpy as np
from bench_helpers import write_images

from medxlate.bench.cohort import prepare_cohort
from medxlate.bench.spec import parse_spec


def _layout(root, n=5):
    rng = np.random.default_rng(0)
    for i in range(n):
        shape = (24, 24, 20)
        mask = np.zeros(shape, bool)
        mask[4:20, 5:19, 3:17] = True
        mr = np.where(mask, rng.uniform(300, 700, shape), 0.0)
        ct = np.where(mask, 40.0, -1024.0)
        write_images(root / f"1BA{i:03d}", mr, ct, mask, spacing=(4.0, 4.0, 4.0))
    return root


def test_layout_and_dataset_cohorts_hold_out_the_test_split(tmp_path):
    layout = _layout(tmp_path / "Task1" / "brain")
    spec = parse_spec({"cohort": {"layout": str(layout),
                                  "split": {"seed": 0, "fractions": [0.6, 0.2, 0.2]},
                                  "preprocess": ["steps.resample.spacing_mm=[4,4,4]",
                                                 "steps.slices.size=[32,32]"]},
                       "models": [{"model": "pix2pix", "steps": 1}]}, tmp_path / "b.yaml")
    cohort = prepare_cohort(spec.cohort, tmp_path / "W" / "cohort", echo=lambda line: None)
    from medxlate.preprocess.dataset import load_dataset

    ds = load_dataset(cohort.dataset)
    held = [s["id"] for s in ds.subjects("test")]
    assert len(held) == 1 and len(ds.subjects("train")) == 3 and len(ds.subjects("val")) == 1
    # held out on the user's own files, as a user would run them
    assert [t.id for t in cohort.tests] == held
    t = cohort.tests[0]
    assert t.mr == layout / held[0] / "mr.nii.gz" and t.mask == layout / held[0] / "mask.nii.gz"
    assert t.files("ct->mr") == (t.ct, t.mr)
    # the same dataset named as a cohort: held out on the dataset grid
    again = prepare_cohort(parse_spec({"cohort": {"dataset": str(cohort.dataset)},
                                       "models": [{"model": "pix2pix", "steps": 1}]},
                                      tmp_path / "c.yaml").cohort, tmp_path / "X",
                           echo=lambda line: None)
    assert [t.id for t in again.tests] == held
    assert again.tests[0].ct == cohort.dataset / "subjects" / held[0] / "ct.nii.gz"
    assert not (tmp_path / "X").exists()          # nothing written for a ready dataset
