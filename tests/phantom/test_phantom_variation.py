"""Per-subject variation and what stays fixed: sex-specific organs, options vs anatomy."""

import numpy as np

from medxlate.phantom import PhantomConfig, make_subject
from medxlate.phantom.tissues import label_of

COARSE_PELVIS = PhantomConfig("pelvis", size=(80, 64, 40), spacing=(5.0, 5.0, 5.0))
COARSE_BRAIN = PhantomConfig("brain", size=(48, 56, 44), spacing=(4.0, 4.0, 4.0))


def test_pelvis_has_prostate_or_uterus_by_sex():
    sexes = set()
    for seed in range(4):
        s = make_subject(COARSE_PELVIS, seed, 0)
        sex = s.truth["anatomy"]["parameters"]["sex"]
        sexes.add(sex)
        present = set(np.unique(s.labels_ct.array).astype(int))
        organ, other = ("prostate", "uterus") if sex == "male" else ("uterus", "prostate")
        assert label_of(organ) in present and label_of(other) not in present
        assert label_of("urine") in present and label_of("cortical_bone") in present
    assert sexes == {"male", "female"}


def test_options_do_not_change_the_anatomy_or_the_ct():
    a = make_subject(COARSE_BRAIN, 5, 2)
    b = make_subject(PhantomConfig(**{**COARSE_BRAIN.__dict__, "contrasts": ("t1w", "t2w")}),
                     5, 2)
    assert np.array_equal(a.labels.array, b.labels.array)
    assert np.array_equal(a.ct.array, b.ct.array)
    assert np.array_equal(a.mr["t1w"].array, b.mr["t1w"].array)
    # Another MR grid: same subject (same CT-world anatomy), MR resampled differently.
    c = make_subject(PhantomConfig(**{**COARSE_BRAIN.__dict__, "size": (40, 48, 40)}), 5, 2)
    assert c.truth["anatomy"]["parameters"] == a.truth["anatomy"]["parameters"]
    assert c.truth["transform"]["mr_to_ct"] == a.truth["transform"]["mr_to_ct"]


def test_subjects_vary_in_size_protocol_and_tissue_values():
    subjects = [make_subject(COARSE_BRAIN, 0, i) for i in range(3)]
    volumes = [float(np.isin(s.labels_ct.array, [8, 9]).sum() * np.prod(s.ct.spacing))
               for s in subjects]
    assert max(volumes) / min(volumes) > 1.02
    hu_wm = {s.truth["ct"]["tissue_hu"]["white_matter"] for s in subjects}
    tr = {s.truth["mr"]["t1w"]["tr_ms"] for s in subjects}
    assert len(hu_wm) == 3 and len(tr) == 3
