"""The exact metric definitions written into every report, so numbers can be quoted."""

from __future__ import annotations

#: CT ranges of the public evaluation code (clip range and data range R = HIGH - LOW).
SYNTHRAD2023_RANGE = (-1024.0, 3000.0)
#: github.com/SynthRAD2025/evaluation, image_metrics.py (the challenge's evaluation container).
SYNTHRAD2025_CONTAINER_RANGE = (-1024.0, 3071.0)


def range_label(low: float, high: float) -> str:
    """Whose CT range ``[low, high]`` is, for the PSNR/SSIM/MS-SSIM definitions."""
    here = (float(low), float(high))
    if here == SYNTHRAD2023_RANGE:
        return ("range of SynthRAD2023's metrics; SynthRAD2025's evaluation container uses "
                "[-1024, 3071], so these values differ slightly from its leaderboard")
    if here == SYNTHRAD2025_CONTAINER_RANGE:
        return "range of SynthRAD2025's evaluation container"
    return ("custom range: SynthRAD2023 uses [-1024, 3000], SynthRAD2025's evaluation "
            "container [-1024, 3071]")


def definitions(modality: str, low: float | None, high: float | None,
                tissue_thresholds: tuple[float, float] | None) -> dict[str, str]:
    """Metric name -> definition text, with the ranges of this run filled in.

    ``low``/``high`` None: the range differs per subject (z-scored synthetic MR).
    """
    if low is None or high is None:
        r, rng, fill = "[LOW, HIGH] (per subject: subjects[].range)", "HIGH - LOW", "LOW"
    else:
        r, rng, fill = f"[{low:g}, {high:g}]", f"{high - low:g}", f"{low:g}"
    unit = "HU" if modality == "CT" else "normalised intensity"
    # Who uses this range (CT only: MR ranges are per normalisation).
    whose = f"; {range_label(low, high)}" if modality == "CT" and low is not None else ""
    defs = {
        "mae": f"sum(|ref*m - pred*m|) / sum(m), {unit}, unclipped (SynthRAD2023)",
        "me": f"sum(pred*m - ref*m) / sum(m), {unit}, unclipped; positive = prediction too "
              "high",
        "psnr": f"10*log10(R^2 / MSE) over mask voxels after clipping both to {r}, R = {rng} "
                f"(SynthRAD2023 formula{whose}; inf when MSE = 0)",
        "ssim": f"clip both to {r}, set voxels outside m to {fill}, subtract {fill}; 3D SSIM "
                f"map with a uniform 7x7x7 window, K1=0.01, K2=0.03, data range {rng}, sample "
                "covariance (skimage structural_similarity defaults, full=True); mean of the "
                f"map over m excluding a 3-voxel border (SynthRAD2023 formula{whose})",
        "ms_ssim": f"same clipping to {r}, filling and shift as ssim; edge-pad every axis of "
                   "images and mask to at least 97 voxels ((97-n)//2 before); 5 scales, weights "
                   "[0.0448, 0.2856, 0.3001, 0.2363, 0.1333]; per scale the masked mean (3-voxel "
                   "border excluded) of (L*C*S)^w with L, C, S from a uniform 7^3 window (sample "
                   f"covariance), C1=(0.01R)^2, C2=(0.03R)^2, C3=C2/2, R={rng}, each clipped at "
                   ">= 0; then 2x2x2 box average ('same' convolution) and stride 2 for the images, "
                   "stride 2 for the mask; MS-SSIM = product of clip(mean_i, 0, 1) (SynthRAD2025 "
                   f"formula{whose}); not flip invariant, so computed on the reference file's "
                   "voxels in stored order (subjects[].array_order), as SimpleITK's "
                   "GetArrayFromImage gives them to the SynthRAD code",
        "nmse": "||pred - ref||^2 / ||ref||^2 over mask voxels, unclipped",
        "mask": "m = mask > 0 (SynthRAD); a report warns when a mask holds other values "
                "than 0 and 1",
    }
    if tissue_thresholds is not None:
        t1, t2 = tissue_thresholds
        defs["mae_air"] = f"MAE over mask voxels with reference < {t1:g} HU"
        defs["mae_soft_tissue"] = f"MAE over mask voxels with {t1:g} <= reference <= {t2:g} HU"
        defs["mae_bone"] = f"MAE over mask voxels with reference > {t2:g} HU"
    defs["mae_label_<k>"] = "MAE over mask voxels whose label map value is k (when --labels)"
    if modality == "MR":
        defs["normalisation"] = (
            "synthetic MR: prediction and reference are normalised with the reference's "
            "parameters (the dataset's per-subject values when --ref is a dataset, else the "
            "reference's percentiles inside the mask) to [-1, 1] as in docs/dataset-format.md; "
            "metrics use that range (z-score datasets: the normalised reference's range inside "
            "the mask)")
    return defs
