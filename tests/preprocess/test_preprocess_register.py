"""Registration accuracy against exactly known misalignments (TRE in mm)."""

import numpy as np
import pytest
import SimpleITK as sitk
from preprocess_synthetic import body_points, make_pair, rigid_matrix

from medxlate.preprocess.config import build_config
from medxlate.preprocess.itk_bridge import from_sitk, to_sitk, transform_points_ras
from medxlate.preprocess.mask import body_mask
from medxlate.preprocess.register import matrix_ras, register_ct_to_mr
from medxlate.preprocess.tre import tre_mm


def _tre(transform, truth, mr):
    pts = body_points(mr)
    err = np.linalg.norm(transform_points_ras(transform, pts)
                         - (pts @ truth[:3, :3].T + truth[:3, 3]), axis=1)
    return np.median(err), err.max()


def test_itk_bridge_round_trip():
    a = np.random.default_rng(0).normal(size=(5, 6, 7)).astype(np.float32)
    aff = np.array([[0, -2.0, 0, 10], [1.5, 0, 0, -3], [0, 0, 2.5, 7], [0, 0, 0, 1]])
    from medxlate.io import Volume

    v = Volume(a, aff, "MR")
    image = to_sitk(v)
    # ITK's physical point of index (i, j, k) is the RAS world point with x, y negated
    p = np.asarray(image.TransformIndexToPhysicalPoint((1, 2, 3)))
    np.testing.assert_allclose(p * [-1, -1, 1], v.world([1, 2, 3]))
    back = from_sitk(image, "MR")
    np.testing.assert_array_equal(back.array, a)
    np.testing.assert_allclose(back.affine, aff, atol=1e-12)


def test_rigid_default_misalignment_sub_millimetre():
    truth = rigid_matrix((6, -4, 8), (7, -5, 9))
    mr, ct = make_pair(truth, (2.5, 2.5, 2.5), (2.0, 2.0, 2.5))
    params = build_config("brain")["steps"]["register"] | {"init_search": False}
    transform, report = register_ct_to_mr(mr, ct, params, body_mask(mr))
    median, worst = _tre(transform, truth, mr)
    assert median < 0.5 and worst < 1.0
    assert report["mi_final"] > report["mi_initial"] + 0.3
    np.testing.assert_allclose(matrix_ras(transform), truth, atol=0.05 * np.abs(truth).max())
    stats = tre_mm(transform, truth, body_points(mr))
    assert stats["median"] == pytest.approx(median, abs=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["affine", "bspline"])
def test_affine_and_bspline_keep_accuracy(kind):
    truth = rigid_matrix((5, 3, -6), (-6, 4, 5), flip=True)
    mr, ct = make_pair(truth, (2.5, 2.5, 2.5), (2.0, 2.0, 2.5))
    params = build_config("brain", None, [f"steps.register.transform={kind}",
                                          "steps.register.bspline_iterations=15"])
    transform, report = register_ct_to_mr(mr, ct, params["steps"]["register"], body_mask(mr))
    median, worst = _tre(transform, truth, mr)
    assert report["init_search"]["best"] == "180 deg about A (y)"
    assert kind in report and report[kind]["mi"] >= report["rigid"]["mi"] - 0.02
    if kind == "affine":
        assert median < 1.0 and worst < 2.0
    else:
        # The truth is rigid: the deformable part can only add error; it must stay small
        # and the rigid part inside the composite must be exact.
        assert isinstance(transform, sitk.CompositeTransform)
        assert median < 1.5 and worst < 4.0
        assert _tre(transform.GetNthTransform(0), truth, mr)[0] < 0.5
