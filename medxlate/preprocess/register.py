"""Registration of CT onto MR with SimpleITK (MR fixed, CT moving).

Rigid by default: Mattes mutual information (Mattes et al. 2003), regular-step gradient
descent over a versor rigid transform, multi-resolution pyramid (shrink 8/4/2/1 with
Gaussian smoothing in mm), centre-of-geometry initialisation. Before it, an initialisation
search tries the 24 axis-aligned rotations (:mod:`medxlate.preprocess.rotations`) on a coarse
isotropic grid with a short optimisation each and keeps the best metric, so scans acquired
turned or flipped over are found. Options: affine on top of rigid, or a B-spline (coarse
control grid, ``bspline_grid_mm``) on top of rigid.

The returned ITK transform maps MR (fixed) physical points to CT (moving) points, in ITK's
LPS convention, as ``sitk.Resample`` expects. Reports give matrices in RAS.

Reproducibility: the same input, config and seed give a bit-identical transform. The random
metric sampling is seeded (ITK reads a seed of 0 as "seed from the wall clock", which made the
default seed 0 random: 178.21 vs 178.31 degrees for one real pair; seed ``s`` is now passed as
``s + 1``), and registration runs ITK single-threaded: multi-threaded Mattes MI sums its joint
histogram in thread completion order, so runs differed in the last bits, which an optimiser
can amplify. Registration therefore uses one core; ``--workers N`` parallelises subjects.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from medxlate.errors import InputError
from medxlate.io.volume import Volume
from medxlate.preprocess.itk_bridge import FLIP_XY, to_sitk
from medxlate.preprocess.mask import outside_distance
from medxlate.preprocess.rotations import AXIS_ROTATIONS, angle_deg, describe

CT_RANGE = (-1024.0, 3000.0)
MASK_DILATION_MM = 10.0
_UINT32 = 2 ** 32


def itk_seed(seed: int) -> int:
    """The ITK sampling seed for ``seed``: never 0, which ITK reads as "use the wall clock"."""
    return int(seed) % (_UINT32 - 1) + 1


@contextmanager
def single_threaded_itk():
    """Run ITK filters and metrics on one thread inside the block (restored after).

    ITK's Mattes MI accumulates its joint histogram from all threads in completion order, so
    multi-threaded runs differ in the last bits and the optimiser amplifies that into
    different transforms. One thread makes the result a function of the input alone.
    """
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)


def _prepare(mr: Volume, ct: Volume, mr_mask: np.ndarray | None, grid_mm: float):
    """Images with robust intensity ranges, the fixed one on an isotropic ``grid_mm`` grid
    (anisotropic MR would otherwise collapse to one slice at the coarse pyramid levels), and
    the fixed mask (body dilated by 10 mm) on that grid."""
    lo, hi = np.percentile(mr.array.ravel()[::7], [0.5, 99.8])  # a subsample is plenty
    fixed = to_sitk(mr.with_array(np.clip(mr.array, lo, hi)))
    if not np.allclose(mr.spacing, grid_mm, rtol=0.02):
        fixed = _coarse(fixed, grid_mm)
    moving = to_sitk(ct.with_array(np.clip(ct.array, *CT_RANGE)))
    mask = None
    if mr_mask is not None and mr_mask.any():
        dilated = outside_distance(mr_mask, mr.spacing) <= MASK_DILATION_MM
        mask = to_sitk(dilated.astype(np.uint8), mr.affine, sitk.sitkUInt8)
        if not np.allclose(mr.spacing, grid_mm, rtol=0.02):
            mask = _coarse(mask, grid_mm, sitk.sitkNearestNeighbor)
    return fixed, moving, mask


def _coarse(image: sitk.Image, spacing_mm: float, interpolator=sitk.sitkLinear) -> sitk.Image:
    """Smooth (sigma = spacing / 2) and resample ``image`` onto an isotropic coarse grid."""
    size = [max(4, round(n * s / spacing_mm)) for n, s in
            zip(image.GetSize(), image.GetSpacing())]
    origin = np.asarray(image.GetOrigin()) + np.asarray(image.GetDirection()).reshape(3, 3) @ (
        (spacing_mm - np.asarray(image.GetSpacing())) / 2.0)
    if interpolator == sitk.sitkLinear:
        image = sitk.SmoothingRecursiveGaussian(image, spacing_mm / 2.0)
    return sitk.Resample(image, size, sitk.Transform(), interpolator, tuple(origin),
                         (spacing_mm,) * 3, image.GetDirection(), 0.0, image.GetPixelID())


def _method(params: dict, mask: sitk.Image | None, n_voxels: float, shrink, seed: int):
    """A Mattes-MI method sampling about ``params["samples"]`` points at each pyramid level."""
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=int(params["bins"]))
    fractions = [min(1.0, float(params["samples"]) * float(s) ** 3 / max(n_voxels, 1.0))
                 for s in shrink]
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentagePerLevel(fractions, itk_seed(seed))
    # With sparse random samples, gradients at the sample points are far cheaper than
    # gradient images of the whole (full-resolution) volumes at every pyramid level.
    method.SetMetricUseFixedImageGradientFilter(False)
    method.SetMetricUseMovingImageGradientFilter(False)
    if mask is not None:
        method.SetMetricFixedMask(mask)
    method.SetInterpolator(sitk.sitkLinear)
    return method


def _mask_voxels(mask: sitk.Image | None, image: sitk.Image) -> float:
    if mask is None:
        return float(np.prod(image.GetSize()))
    return float(sitk.GetArrayViewFromImage(mask).sum())


def metric_mi(fixed, moving, transform, mask=None, bins: int = 32) -> float | None:
    """Mattes mutual information (nats, higher is better) of ``moving`` through ``transform``.

    All voxels of ``fixed`` (inside ``mask``) are used; None when the images do not overlap.
    """
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=bins)
    method.SetMetricSamplingStrategy(method.NONE)
    if mask is not None:
        method.SetMetricFixedMask(mask)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetInitialTransform(transform, inPlace=False)
    try:
        return -float(method.MetricEvaluate(fixed, moving))
    except RuntimeError:  # "All samples map outside moving image buffer" and friends
        return None


def _matrix_lps(transform: sitk.Transform) -> np.ndarray:
    """4x4 LPS matrix of a matrix-offset ITK transform (rigid, affine)."""
    matrix = np.asarray(transform.GetMatrix()).reshape(3, 3)
    centre = np.asarray(transform.GetCenter())
    out = np.eye(4)
    out[:3, :3] = matrix
    out[:3, 3] = np.asarray(transform.GetTranslation()) + centre - matrix @ centre
    return out


def _from_matrix_lps(matrix: np.ndarray, centre, kind: str = "rigid") -> sitk.Transform:
    """A VersorRigid3D (orthonormal ``matrix``) or Affine transform about ``centre``."""
    centre = np.asarray(centre, dtype=np.float64)
    tx = sitk.VersorRigid3DTransform() if kind == "rigid" else sitk.AffineTransform(3)
    tx.SetCenter(tuple(float(c) for c in centre))
    tx.SetMatrix(tuple(float(v) for v in matrix[:3, :3].ravel()))
    translation = matrix[:3, 3] - centre + matrix[:3, :3] @ centre
    tx.SetTranslation(tuple(float(t) for t in translation))
    return tx


def _refine(method, fixed, moving, start: sitk.Transform, centre, params: dict, shrink,
            smoothing, iterations, kind: str = "rigid") -> tuple[sitk.Transform, str]:
    """Optimise a near-identity rigid/affine correction applied before ``start``.

    The optimised transform always starts at the identity, so versor parameters stay far
    from their singularity at 180 degrees, whatever rotation ``start`` holds; the result is
    flattened into one transform ``start o correction``.
    """
    correction = _from_matrix_lps(np.eye(4), centre, kind)
    method.SetMovingInitialTransform(start)
    correction, _, stop = _optimise(method, fixed, moving, correction, params, shrink, smoothing,
                                    iterations)
    total = _matrix_lps(start) @ _matrix_lps(correction)
    return _from_matrix_lps(total, centre, kind), stop


def _optimise(method, fixed, moving, transform, params: dict, shrink, smoothing,
              iterations) -> tuple[sitk.Transform, float, str]:
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=float(params["learning_rate"]), minStep=float(params["min_step"]),
        numberOfIterations=int(iterations), relaxationFactor=0.6,
        gradientMagnitudeTolerance=1e-8)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([int(s) for s in shrink])
    method.SetSmoothingSigmasPerLevel([float(s) for s in smoothing])
    method.SetSmoothingSigmasAreSpecifiedInPhysicalUnits(True)
    method.SetInitialTransform(transform, inPlace=True)
    try:
        method.Execute(fixed, moving)
    except RuntimeError as exc:
        raise InputError(f"registration failed: {str(exc).strip().splitlines()[-1]} "
                         "(do the MR and CT show the same anatomy?)") from exc
    return transform, -float(method.GetMetricValue()), method.GetOptimizerStopConditionDescription()


def _centres(fixed, moving, mr_mask, ct_mask, mr: Volume, ct: Volume, how: str):
    if how == "mask" and mr_mask is not None and ct_mask is not None \
            and mr_mask.any() and ct_mask.any():
        c_f = mr.world(np.array(ndimage.center_of_mass(mr_mask)))
        c_m = ct.world(np.array(ndimage.center_of_mass(ct_mask)))
        return FLIP_XY @ c_f, FLIP_XY @ c_m
    def centre(img):
        return np.asarray(img.TransformContinuousIndexToPhysicalPoint(
            [(n - 1) / 2.0 for n in img.GetSize()]))
    return centre(fixed), centre(moving)


def search_initialisation(fixed, moving, mask, c_f, c_m, params: dict, seed: int):
    """Short coarse registrations from each axis-aligned rotation; all results, best first.

    Each candidate rotates the CT about its centre onto the MR centre; the MI after a short
    rigid refinement on an isotropic ``search_spacing_mm`` grid ranks them.
    """
    spacing = float(params["search_spacing_mm"])
    f_small, m_small = _coarse(fixed, spacing), _coarse(moving, spacing)
    mask_small = _coarse(mask, spacing, sitk.sitkNearestNeighbor) if mask is not None else None
    n = _mask_voxels(mask_small, f_small)
    params = {**params, "samples": params["search_samples"]}
    results = []
    for rotation in AXIS_ROTATIONS:
        start = _from_matrix_lps(_turn_lps(rotation, c_f, c_m), c_f)
        try:
            tx, _ = _refine(_method(params, mask_small, n, [1], seed), f_small, m_small, start,
                            c_f, params, [1], [0.0], params["search_iterations"])
        except InputError:
            continue
        mi = metric_mi(f_small, m_small, tx, mask_small, int(params["bins"]))
        if mi is not None:
            results.append({"rotation_ras": rotation, "label": describe(rotation), "mi": mi,
                            "transform": tx})
    if not results:
        raise InputError("registration failed: MR and CT do not overlap from any starting "
                         "orientation")
    return sorted(results, key=lambda r: -r["mi"])


def _turn_lps(rotation_ras: np.ndarray, c_f, c_m) -> np.ndarray:
    """4x4 LPS map ``p -> R (p - c_f) + c_m`` for a RAS rotation R."""
    r_lps = FLIP_XY @ rotation_ras @ FLIP_XY
    out = np.eye(4)
    out[:3, :3] = r_lps
    out[:3, 3] = np.asarray(c_m) - r_lps @ np.asarray(c_f)
    return out


def matrix_ras(transform: sitk.Transform) -> np.ndarray:
    """4x4 matrix of a rigid/affine ITK transform, MR RAS mm -> CT RAS mm."""
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    return flip @ _matrix_lps(transform) @ flip


def register_ct_to_mr(mr: Volume, ct: Volume, params: dict, mr_mask: np.ndarray | None = None,
                      ct_mask: np.ndarray | None = None, seed: int = 0,
                      log=None) -> tuple[sitk.Transform, dict]:
    """Register ``ct`` onto ``mr``; returns the ITK transform and a JSON-ready report.

    Args:
        mr, ct: canonical volumes (MR any units, CT in HU).
        params: ``steps.register`` of the preprocessing config.
        mr_mask, ct_mask: body masks on each volume's grid (restrict the metric to the body
            and, with ``init="mask"``, give the centroids for initialisation).
        seed: seeds the random metric sampling; the same input, params and seed give a
            bit-identical transform (ITK runs single-threaded meanwhile).
        log: optional callable receiving short progress strings.

    The report holds the MI (on a common ``metric_spacing_mm`` grid, inside the dilated MR
    body) with the scanner geometry as it came (``mi_identity``), after centring
    (``mi_initial``), after the initialisation search (``init_search.best_mi``) and at the end
    (``mi_final``), all comparable; the search's ranking on its own coarse grid
    (``init_search.candidates[].search_mi``, comparable only with each other); the final
    matrices in RAS, and timings.
    """
    with single_threaded_itk():
        return _register(mr, ct, params, mr_mask, ct_mask, seed, log)


def _register(mr, ct, params, mr_mask, ct_mask, seed, log):
    say = log or (lambda _msg: None)
    clock = time.perf_counter()
    timings = {}
    grid_mm = max(float(params["grid_mm"]), min(mr.spacing))
    fixed, moving, mask = _prepare(mr, ct, mr_mask, grid_mm)
    eval_spacing = max(2.0, min(mr.spacing))
    f_eval, m_eval = _coarse(fixed, eval_spacing), _coarse(moving, eval_spacing)
    mask_eval = _coarse(mask, eval_spacing, sitk.sitkNearestNeighbor) if mask is not None else None

    def mi(tx):
        value = metric_mi(f_eval, m_eval, tx, mask_eval, int(params["bins"]))
        return None if value is None else round(value, 5)

    c_f, c_m = _centres(fixed, moving, mr_mask, ct_mask, mr, ct, params["init"])
    rigid = _from_matrix_lps(_turn_lps(np.eye(3), c_f, c_m), c_f)
    report: dict = {"transform": params["transform"], "metric": "Mattes mutual information "
                    "(nats, higher is better)", "metric_spacing_mm": eval_spacing,
                    "grid_mm": grid_mm,
                    "mi_identity": mi(sitk.Transform()), "mi_initial": mi(rigid)}
    timings["prepare"] = time.perf_counter() - clock
    if params["init_search"]:
        say("searching 24 starting orientations")
        found = search_initialisation(fixed, moving, mask, c_f, c_m, params, seed)
        best = found[0]
        identity = next((r for r in found if r["label"] == "identity"), None)
        # best_mi/identity_mi on the common grid (comparable with mi_final); the ranking's
        # own values come from the coarse search grid and are labelled search_mi.
        report["init_search"] = {
            "best": best["label"], "rotation_ras": best["rotation_ras"].tolist(),
            "best_mi": mi(best["transform"]),
            "identity_mi": None if identity is None else mi(identity["transform"]),
            "search_spacing_mm": float(params["search_spacing_mm"]),
            "candidates": [{"label": r["label"], "search_mi": round(r["mi"], 5)}
                           for r in found]}
        rigid = best["transform"]
        timings["init_search"] = time.perf_counter() - clock - sum(timings.values())
    say("rigid registration")
    n = _mask_voxels(mask, fixed)
    shrink, smoothing = params["shrink_factors"], params["smoothing_mm"]
    rigid, stop = _refine(_method(params, mask, n, shrink, seed), fixed, moving, rigid, c_f,
                          params, shrink, smoothing, params["iterations"])
    timings["rigid"] = time.perf_counter() - clock - sum(timings.values())
    final: sitk.Transform = rigid
    rotation = np.asarray(rigid.GetMatrix()).reshape(3, 3)
    report["rigid"] = {"matrix_ras": matrix_ras(rigid).round(6).tolist(),
                       "rotation_deg": round(angle_deg(rotation), 4), "stop": stop,
                       "mi": mi(rigid)}
    if params["transform"] == "affine":
        say("affine registration")
        final, stop = _refine(_method(params, mask, n, shrink[-3:], seed), fixed, moving, rigid,
                              c_f, params, shrink[-3:], smoothing[-3:], params["iterations"],
                              kind="affine")
        report["affine"] = {"matrix_ras": matrix_ras(final).round(6).tolist(), "stop": stop,
                            "mi": mi(final)}
        timings["affine"] = time.perf_counter() - clock - sum(timings.values())
    elif params["transform"] == "bspline":
        say("B-spline registration")
        final, report["bspline"] = _bspline(fixed, moving, mask, rigid, params, seed, n)
        report["bspline"]["mi"] = mi(final)
        timings["bspline"] = time.perf_counter() - clock - sum(timings.values())
    report["mi_final"] = mi(final)
    report["time_s"] = {k: round(v, 2) for k, v in timings.items()}
    report["time_s"]["total"] = round(time.perf_counter() - clock, 2)
    return final, report


def _bspline(fixed, moving, mask, rigid, params: dict, seed: int, n: float):
    """B-spline on a coarse control grid, optimised on top of the rigid result."""
    extent = np.asarray(fixed.GetSize()) * np.asarray(fixed.GetSpacing())
    mesh = [max(1, round(e / float(params["bspline_grid_mm"]))) for e in extent]
    bspline = sitk.BSplineTransformInitializer(fixed, mesh, order=3)
    method = _method(params, mask, n, params["bspline_shrink_factors"], seed)
    method.SetMovingInitialTransform(rigid)
    # Regular-step descent with physical-shift scales bounds each update to
    # bspline_learning_rate mm: without a bending-energy term, the coarse control grid and
    # small steps are what keep the deformation smooth (L-BFGS-B overshoots by centimetres).
    step_params = {**params, "learning_rate": params["bspline_learning_rate"]}
    bspline, _, stop = _optimise(method, fixed, moving, bspline, step_params,
                                 params["bspline_shrink_factors"],
                                 params["bspline_smoothing_mm"], params["bspline_iterations"])
    composite = sitk.CompositeTransform(rigid)
    composite.AddTransform(bspline)  # applied first: p_ct = rigid(bspline(p_mr))
    coefficients = np.asarray(bspline.GetParameters()).reshape(3, -1)
    return composite, {"mesh_size": mesh, "stop": stop,
                       "max_displacement_mm": round(float(np.abs(coefficients).max()), 3)}
