"""N4 bias correction, split assignment, and cohort discovery."""

import numpy as np
from preprocess_synthetic import make_pair, rigid_matrix

from medxlate.preprocess.bias import n4_correct
from medxlate.preprocess.config import build_config
from medxlate.preprocess.inputs import SubjectInput, cohort_csv
from medxlate.preprocess.mask import body_mask
from medxlate.preprocess.run import assign_splits


def test_n4_removes_a_smooth_bias_field():
    mr, _ = make_pair(rigid_matrix((0, 0, 0), (0, 0, 0)), (4.0, 4.0, 4.0), (4.0, 4.0, 4.0))
    x = mr.world(np.argwhere(np.ones(mr.shape, bool))).reshape(*mr.shape, 3)
    field = np.exp(0.3 * x[..., 0] / 100.0 + 0.2 * x[..., 2] / 100.0)  # up to +-35 %
    biased = mr.with_array(mr.array * field)
    mask = body_mask(biased)
    brain = mr.array > 300  # the uniform "brain" tissue (380)
    corrected, report = n4_correct(biased, mask, build_config()["steps"]["bias_correction"])

    def cv(v):
        return float(v.array[brain].std() / v.array[brain].mean())

    assert cv(biased) > 0.1
    assert cv(corrected) < 0.6 * cv(biased)
    assert report["field_max"] / report["field_min"] > 1.3


def test_seeded_split_counts_and_csv_override():
    cfg = build_config()
    subjects = [SubjectInput(f"s{i:02d}") for i in range(20)]
    subjects[0].split = "test"
    splits = assign_splits(subjects, cfg)
    assert splits["s00"] == "test"
    counts = {k: list(splits.values()).count(k) for k in ("train", "val", "test")}
    assert counts == {"train": 15, "val": 2, "test": 3}  # 19 shuffled: 2 val, 2 test, + s00
    assert assign_splits(subjects, cfg) == splits  # deterministic
    other = assign_splits(subjects, build_config(None, None, ["split.seed=1"]))
    assert other != splits


def test_cohort_csv_paths_and_columns(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("mr.nii.gz", "ct.nii.gz", "truth.json"):
        (tmp_path / "a" / name).write_text("x")
    csv = tmp_path / "c.csv"
    csv.write_text("id,mr,ct,mask\na,a/mr.nii.gz,a/ct.nii.gz,\nb,a/mr.nii.gz,missing.nii.gz,\n")
    a, b = cohort_csv(csv)
    assert a.mr == tmp_path / "a" / "mr.nii.gz" and a.problem is None
    assert a.truth == tmp_path / "a" / "truth.json"  # beside the MR in a folder named like the id
    assert b.problem == f"CT {tmp_path / 'missing.nii.gz'} does not exist"
