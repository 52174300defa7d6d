"""Small phantoms with known contrast and region, and a tiny checkpoint carrying a record."""

from __future__ import annotations

import pytest

from medxlate.phantom.subject import PhantomConfig, make_subject

SMALL = PhantomConfig(size=(48, 56, 44), contrasts=("t1w", "t2w"), ct_on_mr=False)


@pytest.fixture(scope="session")
def heads():
    """Six small T1w/T2w heads (about 4 mm voxels) of one cohort seed."""
    return [make_subject(SMALL, 5, i) for i in range(6)]


@pytest.fixture(scope="session")
def t1_record(heads):
    """The record of a model trained on the T1w images of heads 0-3 at 2 mm."""
    from medxlate.ood.record import build_record
    from medxlate.ood.summary import summarise

    return build_record([summarise(h.mr["t1w"], "MR") for h in heads[:4]], "MR", ["t1"],
                        "brain", [2.0, 2.0, 2.0], "medxlate phantom seed 5, heads 0-3 (tests)")
