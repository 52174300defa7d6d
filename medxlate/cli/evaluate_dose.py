"""`medxlate evaluate --dose`: option checks and the dose columns of the report (no compute)."""

from __future__ import annotations

from pathlib import Path

#: Dose metrics a run computes, for --fail-if and the report columns.
DOSE_METRICS = ("dose_mae_body", "dose_mae_high", "gamma_2_2", "gamma_1_1", "target_d98_diff",
                "target_d95_diff", "target_d2_diff", "target_mean_diff")
PROTON_METRICS = ("range_shift_abs_max", "range_shift_beam_<k>")
SCREEN = {"dose_mae_body": "dMAE body %", "dose_mae_high": "dMAE >90% %",
          "gamma_2_2": "γ 2/2 %", "gamma_1_1": "γ 1/1 %", "target_d98_diff": "ΔD98 %",
          "range_shift_abs_max": "|Δrange| mm"}


def dose_settings(mode: str | None, target: str | None, prescription: str, beams: str | None,
                  dose_grid: float, ct_grid: float, calibration: Path | None,
                  dose_out: Path | None, modality: str):
    """A DoseSettings from the options (UsageError when they do not fit), or None."""
    from medxlate.errors import UsageError

    if mode is None:
        given = [name for name, v in (("--target", target), ("--beams", beams),
                                      ("--calibration", calibration),
                                      ("--dose-out", dose_out)) if v is not None]
        if given:
            raise UsageError(f"{', '.join(given)} only apply with --dose photon|proton")
        return None
    from medxlate.evaluate.dose import require_engine
    from medxlate.evaluate.dose.settings import (
        DoseSettings,
        check_settings,
        parse_beams,
        parse_prescription,
        parse_target,
    )

    mode = mode.lower()
    if modality != "CT":
        raise UsageError("--dose scores a synthetic CT (--modality CT)")
    total, fractions = parse_prescription(prescription)
    settings = DoseSettings(mode=mode, prescription_gy=total, fractions=fractions,
                            target=parse_target(target) if target else None,
                            beams=parse_beams(beams) if beams else (), dose_grid_mm=dose_grid,
                            ct_grid_mm=ct_grid, calibration=calibration, out_dir=dose_out)
    check_settings(settings)
    if calibration is not None:
        from medxlate.evaluate.dose.calibration import read_table

        read_table(calibration)
    require_engine()
    return settings


def known_metrics(settings) -> list[str]:
    if settings is None:
        return []
    names = list(DOSE_METRICS)
    if settings.mode == "proton":
        names += ["range_shift_abs_max"] + [f"range_shift_beam_{k}"
                                            for k in range(1, len(settings.beams) + 1)]
    return names


def dose_outputs(settings, cases) -> dict[str, Path]:
    """Label -> path of every dose file the run will write (for overwrite/overlap checks)."""
    if settings is None or settings.out_dir is None:
        return {}
    from medxlate.evaluate.dose.run import dose_paths, writes_rtdose

    return {f"--dose-out ({c.id} {k})": p for c in cases
            for k, p in dose_paths(c.id, settings.out_dir, writes_rtdose(c.ref)).items()}


def definitions(settings) -> dict[str, str]:
    """Definitions of the dose figures for the report."""
    if settings is None:
        return {}
    rx = f"{settings.prescription_gy:g} Gy"
    return {
        "dose": (f"{settings.mode} plan made on the reference CT with pyRadPlan (matRad's "
                 f"generic machine), gantry {', '.join(f'{b:g}' for b in settings.beams)} deg, "
                 f"{settings.dose_grid_mm:g} mm dose grid, fluence optimised and normalised to "
                 f"target D50 = {rx} ({settings.fractions} fractions), then recomputed on the "
                 "synthetic CT with the same beams, weights and HU calibration "
                 "(docs/dose.md)"),
        "dose_mae_body": f"mean |D_syn - D_ref| over the body mask, % of {rx}",
        "dose_mae_high": f"mean |D_syn - D_ref| where D_ref > 90 % of {rx}, % of {rx}",
        "gamma_2_2": f"pymedphys global gamma pass rate (%), 2 % of {rx} / 2 mm, reference "
                     f"points in the body above 10 % of {rx}",
        "gamma_1_1": f"as gamma_2_2 with 1 % of {rx} / 1 mm",
        "target_<dX>_diff": f"D98, D95, D2 and mean dose of the target, synthetic - reference, "
                            f"% of {rx}",
        "range_shift_beam_<k>": "protons: R80 distal depth of beam k's dose along its central "
                                "axis, synthetic - reference (mm; negative = shorter range)",
        "range_shift_abs_max": "protons: largest |range_shift_beam_<k>| (mm)",
    }
