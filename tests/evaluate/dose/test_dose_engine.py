"""Dose plans on small cylinder phantoms with known answers (pyRadPlan; needs medxlate[dose]).

Oracles: identical CTs give identical doses; removing bone from the anterior half of the beam
path fails gamma only there; a uniform +50 HU shift raises the stopping power by the table's
slope and shortens the proton range by about the water-equivalent scaling of the depth.
"""

import math

import numpy as np
import pytest

from medxlate.evaluate.dose import engine_available
from tests.evaluate.dose import phantoms

pytestmark = pytest.mark.skipif(
    not engine_available(),
    reason='the dose extra is not installed (pip install "medxlate[dose]"): no pyRadPlan or '
           "pymedphys")


def _settings(mode):
    from medxlate.evaluate.dose.settings import DoseSettings

    return DoseSettings(mode=mode, target={"kind": "sphere"}, dose_grid_mm=5.0,
                        ct_grid_mm=phantoms.SPACING)


@pytest.fixture(scope="module")
def proton_plan():
    """Two opposed proton fields planned on the cylinder with the anterior bone half shell."""
    from medxlate.evaluate.dose.calibration import default_table
    from medxlate.evaluate.dose.engine import make_plan

    ct, body, target = phantoms.cylinder()
    ct[phantoms.half_shell()] = phantoms.BONE_HU
    plan = make_plan(ct, body, target, phantoms.grid(), _settings("proton"), default_table())
    return ct, body, target, plan


def test_plan_meets_its_prescription(proton_plan):
    ct, body, target, plan = proton_plan
    assert np.median(plan.dose[target]) == pytest.approx(60.0, rel=1e-9)  # D50 normalisation
    assert np.percentile(plan.dose[target], 2) > 0.85 * 60.0  # an optimised, covering plan
    far = np.hypot(*np.moveaxis(phantoms.world()[..., :2], -1, 0)) > phantoms.BODY_RADIUS + 10
    assert plan.dose[far].max() == 0.0  # no dose 10 mm outside the body (coarse-grid blur)


def test_reference_against_itself_is_exact(proton_plan):
    from medxlate.evaluate.dose.engine import recompute
    from medxlate.evaluate.dose.metrics import dose_metrics

    ct, body, target, plan = proton_plan
    dose, beams, _ = recompute(plan, ct)
    assert np.abs(dose - plan.dose).max() < 1e-9 * 60.0
    metrics, _ = dose_metrics(dose, plan.dose, beams, plan.beam_doses, body, target, 60.0,
                              plan.grid, "proton", plan.iso_center_lps, plan.beam_dirs_lps)
    assert metrics["dose_mae_body"] < 1e-9
    assert metrics["dose_mae_high"] < 1e-9
    assert metrics["gamma_2_2"] == 100.0 and metrics["gamma_1_1"] == 100.0
    for name in ("d98", "d95", "d2", "mean"):
        assert abs(metrics[f"target_{name}_diff"]) < 1e-9
    assert metrics["range_shift_abs_max"] == pytest.approx(0.0, abs=1e-6)


def test_bone_as_soft_tissue_fails_gamma_only_behind_the_bone(proton_plan):
    import pymedphys

    from medxlate.evaluate.dose.engine import recompute

    ct, body, target, plan = proton_plan
    soft = np.where(phantoms.half_shell(), phantoms.SOFT_HU, ct)
    dose, beams, _ = recompute(plan, soft)
    axes = tuple(np.arange(n) * phantoms.SPACING for n in phantoms.SHAPE)
    gamma = pymedphys.gamma(axes, plan.dose, axes, dose, 2, 2, lower_percent_dose_cutoff=10,
                            global_normalisation=60.0, interp_fraction=5, max_gamma=1.1,
                            skip_once_passed=True, interp_algo="scipy")
    y = phantoms.world()[..., 1]
    scored = np.isfinite(gamma)
    behind = scored & (y > 5.0)  # lateral beams whose path crosses the bone shell
    clear = scored & (y < -5.0)  # paths through soft tissue only
    assert behind.sum() > 1000 and clear.sum() > 1000
    assert (gamma[behind] <= 1).mean() < 0.9
    assert (gamma[clear] <= 1).mean() > 0.995
    # less stopping material on the path: both beams reach further (positive shift)
    from medxlate.evaluate.dose.metrics import range_shifts

    assert all(s > 0 for s in range_shifts(beams, plan.beam_doses, plan.grid,
                                           plan.iso_center_lps, plan.beam_dirs_lps))


def test_plus_50_hu_shortens_the_proton_range():
    from medxlate.evaluate.dose.calibration import default_table, lookup
    from medxlate.evaluate.dose.engine import make_plan, recompute
    from medxlate.evaluate.dose.metrics import range_shifts

    ct, body, target = phantoms.cylinder()
    plan = make_plan(ct, body, target, phantoms.grid(), _settings("proton"), default_table())
    shifted = np.where(body, ct + 50.0, ct)
    _, beams, _ = recompute(plan, shifted)
    shifts = range_shifts(beams, plan.beam_doses, plan.grid, plan.iso_center_lps,
                          plan.beam_dirs_lps)
    # Closed form: the same water-equivalent depth is reached after 1/ratio of the geometric
    # depth, ratio = SPR(90 HU) / SPR(40 HU) of matRad's table; the R80 lies about 3 mm beyond
    # the target's distal edge, at 50 + 15 + 3 mm of tissue.
    spr = lookup(np.array([phantoms.SOFT_HU, phantoms.SOFT_HU + 50.0]), default_table())
    expected = -(phantoms.BODY_RADIUS + phantoms.TARGET_RADIUS + 3.0) * (1 - spr[0] / spr[1])
    assert expected == pytest.approx(-68 * (1 - 1.038 / 1.0855), abs=1e-9)  # -2.98 mm by hand
    for s in shifts:
        assert math.isfinite(s)
        assert 2.0 * expected < s < 0.4 * expected  # shorter, by about the expected amount
