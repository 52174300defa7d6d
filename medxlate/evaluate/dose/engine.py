"""pyRadPlan calls: plan on the reference CT, recompute the same plan on the synthetic CT.

The plan (docs/dose.md): beamlets/spots from pyRadPlan's stf generator for the given gantry
angles around the target's centre, a dose influence matrix on the coarse dose grid, fluence
optimisation with pyRadPlan's objectives (target: squared deviation from the prescription,
priority 100; body: squared overdosing above 60 % of it, priority 10), then normalisation of
the weights so that the target's median dose is the prescription. The synthetic CT gets the
same beams and weights: its dose influence matrix times the same weights.

Example:
    >>> plan = make_plan(ref_hu, body, target, grid, settings, table)   # doctest: +SKIP
    >>> dose_pred, beams_pred = recompute(plan, pred_hu)                 # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from medxlate.evaluate.dose.calibration import engine_hu
from medxlate.evaluate.dose.grid import from_sitk, to_sitk
from medxlate.evaluate.dose.settings import DoseSettings
from medxlate.io import Volume


@dataclass
class Plan:
    """A plan made on the reference and what is needed to recompute it."""

    pln: object
    stf: object
    weights: np.ndarray
    beam_of_bixel: np.ndarray
    masks: tuple[np.ndarray, np.ndarray]
    grid: Volume
    table: np.ndarray
    dose: np.ndarray
    beam_doses: list[np.ndarray]
    iso_center_lps: np.ndarray
    beam_dirs_lps: list[np.ndarray]
    seconds: dict = field(default_factory=dict)


# pyRadPlan's tqdm progress bars are not medxlate's output; tqdm reads this when pyRadPlan
# imports it, so it is set before any pyRadPlan import (this module imports none at its top).
os.environ.setdefault("TQDM_DISABLE", "1")


@contextlib.contextmanager
def _quiet():
    """numpy warnings and progress bars (when tqdm was imported before the variable above
    was set) raised inside pyRadPlan are not medxlate's output either."""
    logger = logging.getLogger("pyRadPlan")
    level = logger.level
    logger.setLevel(logging.ERROR)  # "no generator specified, using IMPT" and the like
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _ct_cst(hu: np.ndarray, masks, grid: Volume, table: np.ndarray, objectives=None):
    from pyRadPlan.cst import create_cst
    from pyRadPlan.cst._voi import ExternalVOI, Target
    from pyRadPlan.ct import create_ct

    ct = create_ct(cube_hu=to_sitk(engine_hu(hu, table), grid))
    target, body = (to_sitk(m.astype(np.uint8), grid) for m in masks)
    obj_t, obj_b = objectives or ([], [])
    vois = [Target(name="TARGET", mask=target, ct_image=ct, objectives=obj_t),
            ExternalVOI(name="BODY", mask=body, ct_image=ct, objectives=obj_b)]
    return ct, create_cst(vois=vois, ct=ct)


def _plan_object(s: DoseSettings):
    from pyRadPlan import IonPlan, PhotonPlan

    if s.mode == "photon":
        pln = PhotonPlan(machine="Generic")
    else:
        pln = IonPlan(radiation_mode="protons", machine="Generic")
    pln.num_of_fractions = s.fractions
    pln.prop_stf = {"gantry_angles": list(s.beams), "couch_angles": [0.0] * len(s.beams),
                    "bixel_width": s.bixel_width_mm}
    res = {"x": s.dose_grid_mm, "y": s.dose_grid_mm, "z": s.dose_grid_mm}
    pln.prop_dose_calc = {"dose_grid": {"resolution": res}}
    pln.prop_opt = {"solver": "scipy"}
    return pln


def _beam_doses(dij, weights: np.ndarray, beam_of_bixel: np.ndarray, n_beams: int):
    doses = []
    for b in range(n_beams):
        result = dij.compute_result_ct_grid(np.where(beam_of_bixel == b, weights, 0.0))
        doses.append(from_sitk(result["physical_dose"]).astype(np.float64))
    return doses


def make_plan(ref_hu: np.ndarray, body: np.ndarray, target: np.ndarray, grid: Volume,
              s: DoseSettings, table: np.ndarray) -> Plan:
    """Plan on the reference (arrays on ``grid``); doses in Gy, total over all fractions."""
    from pyRadPlan import calc_dose_influence, fluence_optimization, generate_stf
    from pyRadPlan.optimization.objectives import SquaredDeviation, SquaredOverdosing

    seconds = {}
    with _quiet():
        t = time.perf_counter()
        per_fx = s.prescription_gy / s.fractions
        objectives = ([SquaredDeviation(priority=100.0, d_ref=per_fx)],
                      [SquaredOverdosing(priority=10.0, d_max=0.6 * per_fx)])
        ct, cst = _ct_cst(ref_hu, (target, body), grid, table, objectives)
        pln = _plan_object(s)
        stf = generate_stf(ct, cst, pln)
        seconds["beam_geometry"] = time.perf_counter() - t
        t = time.perf_counter()
        dij = calc_dose_influence(ct, cst, stf, pln)
        seconds["dose_influence_ref"] = time.perf_counter() - t
        t = time.perf_counter()
        weights = np.asarray(fluence_optimization(ct, cst, stf, dij, pln), np.float64)
        seconds["optimisation"] = time.perf_counter() - t
        beam_of_bixel = np.asarray(dij.beam_num).ravel().astype(int)
        doses = _beam_doses(dij, weights, beam_of_bixel, len(s.beams))
    total = np.sum(doses, axis=0)
    d50 = float(np.median(total[target]))
    if not d50 > 0:
        from medxlate.errors import InputError

        raise InputError("the plan gives the target no dose (is the target inside the beams?)")
    scale = s.prescription_gy / d50
    iso = np.asarray(stf.beams[0].iso_center, np.float64)
    dirs = [-np.asarray(b.source_point, np.float64) / np.linalg.norm(b.source_point)
            for b in stf.beams]
    return Plan(pln, stf, weights * scale, beam_of_bixel, (target, body), grid, table,
                total * scale, [d * scale for d in doses], iso, dirs, seconds)


def recompute(plan: Plan, pred_hu: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], float]:
    """(total dose, per-beam doses, seconds) of the same plan on another CT of the same grid."""
    from pyRadPlan import calc_dose_influence

    with _quiet():
        t = time.perf_counter()
        ct, cst = _ct_cst(pred_hu, plan.masks, plan.grid, plan.table)
        dij = calc_dose_influence(ct, cst, plan.stf, plan.pln)
        doses = _beam_doses(dij, plan.weights, plan.beam_of_bixel, len(plan.stf.beams))
    return np.sum(doses, axis=0), doses, time.perf_counter() - t
