"""CT numbers and MR contrast of generated phantoms, and the MR signal equations."""

import numpy as np
import pytest
from phantom_cases import interior, subject

from medxlate.phantom.mr import spin_echo, spoiled_gre
from medxlate.phantom.tissues import BY_NAME, TISSUES, label_of

# Tissues whose interior must exist (and be tested) in each region.
REQUIRED = {
    "brain": ["air", "skin", "fat", "muscle", "cortical_bone", "cancellous_bone", "csf",
              "grey_matter", "white_matter", "deep_grey", "vitreous"],
    "pelvis": ["fat", "muscle", "cortical_bone", "cancellous_bone", "urine", "bowel_content"],
}


@pytest.mark.parametrize("region", ["brain", "pelvis"])
def test_ct_tissue_medians_lie_in_documented_ranges(region):
    s = subject(region)
    labels, hu = s.labels_ct.array.astype(int), s.ct.array
    tested = []
    for t in TISSUES[1:]:
        core = interior(labels, t.label, 2)  # away from partial volume and blur
        if core.sum() < 20:
            core = interior(labels, t.label, 1)  # thin tissues: skin, skull tables
        if core.sum() < 20:
            continue
        median = float(np.median(hu[core]))
        assert t.hu_range[0] <= median <= t.hu_range[1], (t.name, median, t.hu_range)
        tested.append(t.name)
    assert set(REQUIRED[region]) <= set(tested), set(REQUIRED[region]) - set(tested)
    assert float(np.median(hu[labels == 0])) == pytest.approx(-1000, abs=5)
    # The subject's drawn tissue values are recorded and lie in the sampling ranges.
    for name, value in s.truth["ct"]["tissue_hu"].items():
        assert BY_NAME[name].hu_range[0] <= value <= BY_NAME[name].hu_range[1]


def _medians(s, contrast, names, iterations=1):
    labels = s.labels.array.astype(int)
    image = s.mr[contrast].array
    return {n: float(np.median(image[interior(labels, label_of(n), iterations)])) for n in names}


def test_brain_t1w_ordering_fat_wm_gm_csf_and_bone_air_darkest():
    m = _medians(subject("brain"), "t1w", ["fat", "white_matter", "grey_matter", "csf",
                                           "cortical_bone", "air", "background", "muscle"])
    assert m["fat"] > m["white_matter"] > m["grey_matter"] > m["csf"]
    soft = min(m[n] for n in ("fat", "white_matter", "grey_matter", "csf", "muscle"))
    for dark in ("cortical_bone", "air", "background"):
        assert m[dark] < 0.5 * soft, (dark, m)


def test_brain_t2w_ordering_csf_gm_wm_and_bone_dark():
    m = _medians(subject("brain"), "t2w", ["csf", "grey_matter", "white_matter",
                                           "cortical_bone", "air"])
    assert m["csf"] > m["grey_matter"] > m["white_matter"]
    assert m["cortical_bone"] < 0.3 * m["white_matter"]
    assert m["air"] < 0.3 * m["white_matter"]


def test_pelvis_mr_contrast():
    s = subject("pelvis")
    t1 = _medians(s, "t1w", ["fat", "muscle", "urine", "cortical_bone", "cancellous_bone"])
    t2 = _medians(s, "t2w", ["fat", "muscle", "urine", "cortical_bone"])
    assert t1["fat"] > t1["muscle"] > t1["urine"] > t1["cortical_bone"]
    assert t1["cancellous_bone"] > t1["muscle"]  # fatty marrow is bright on T1w
    assert t2["urine"] > t2["fat"] and t2["urine"] > t2["muscle"] > t2["cortical_bone"]


def test_mr_background_is_rician_and_positive():
    s = subject("brain")
    bg = s.mr["t1w"].array[s.labels.array == 0]
    sigma = s.truth["mr"]["acquisition"]["t1w"]["noise_sigma"]
    # Mean of a Rayleigh distribution is sigma * sqrt(pi / 2) (bias-scaled, so loosely).
    assert bg.min() >= 0
    assert 0.6 * sigma * np.sqrt(np.pi / 2) < bg.mean() < 1.6 * sigma * np.sqrt(np.pi / 2)


def test_spoiled_gre_limits_and_ernst_angle():
    # 90 degrees, TR >> T1: full recovery, S = PD exp(-TE/T2*).
    assert spoiled_gre(0.8, 500, 40, 1e6, 4, 90) == pytest.approx(0.8 * np.exp(-0.1))
    # The signal peaks at the Ernst angle arccos(exp(-TR/T1)).
    angles = np.linspace(1, 60, 5901)
    s = spoiled_gre(1.0, 1000, 1e9, 20, 0, angles)
    assert angles[np.argmax(s)] == pytest.approx(np.degrees(np.arccos(np.exp(-0.02))), abs=0.02)


def test_spin_echo_formula():
    # Long TR: S = PD exp(-TE/T2); TE -> 0: S = PD (1 - exp(-TR/T1)).
    assert spin_echo(1.0, 1000, 100, 1e6, 100) == pytest.approx(np.exp(-1))
    assert spin_echo(0.7, 1000, 100, 1000, 1e-9) == pytest.approx(0.7 * (1 - np.exp(-1)))


@pytest.mark.parametrize("field", [1.5, 3.0])
@pytest.mark.parametrize("tr,flip", [(8, 18), (8, 30), (20, 18), (20, 30)])
def test_contrast_ordering_holds_over_the_whole_protocol_range(field, tr, flip):
    """At every corner of the sampled protocol ranges (tissue values as tabulated)."""
    from medxlate.phantom.tissues import relaxation

    def signal(name, kind):
        t = BY_NAME[name]
        t1, t2 = relaxation(t, field)
        if kind == "t1w":
            return float(spoiled_gre(t.pd, t1, t.t2star, tr, 4.5, flip))
        return float(spin_echo(t.pd, t1, t2, 2500, 120))

    s1 = {n: signal(n, "t1w") for n in BY_NAME if n not in ("background", "air")}
    assert s1["fat"] > s1["white_matter"] > s1["grey_matter"] > s1["csf"]
    assert s1["white_matter"] / s1["grey_matter"] > 1.1
    assert s1["cortical_bone"] < 0.05 * min(v for n, v in s1.items() if n != "cortical_bone")
    s2 = {n: signal(n, "t2w") for n in ("csf", "grey_matter", "white_matter", "cortical_bone")}
    assert s2["csf"] > s2["grey_matter"] > s2["white_matter"] > 100 * s2["cortical_bone"]
