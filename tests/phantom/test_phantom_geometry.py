"""Grids, the saved transform, label maps, body mask and ct_on_mr of generated phantoms."""

import numpy as np
import pytest
from phantom_cases import dice, labels_on_mr, subject
from scipy import ndimage

from medxlate.phantom import ct_points_to_mr, mr_points_to_ct, mr_to_ct, registration_error_mm
from medxlate.phantom.tissues import AIR_LABELS, label_of

BRAIN_LABELS = [label_of(n) for n in ("grey_matter", "white_matter", "deep_grey")]


def test_mask_covers_every_tissue_voxel_and_not_the_background():
    for region in ("brain", "pelvis"):
        s = subject(region)
        labels, mask = s.labels.array.astype(int), s.mask.array
        tissue = ~np.isin(labels, AIR_LABELS)
        assert mask[tissue].min() == 1
        assert set(np.unique(mask)) == {0.0, 1.0}
        assert 0.1 < mask.mean() < 0.95
        assert mask[labels == 1].min() == 1  # internal air (sinuses, gas) is inside the body


def test_mr_and_ct_grids_differ_and_match_truth():
    s = subject("brain")
    assert s.mr["t1w"].shape == (128, 148, 112) and s.mr["t1w"].spacing == (1.5, 1.5, 1.5)
    assert not s.ct.same_grid(s.mr["t1w"])
    assert s.ct.spacing != s.mr["t1w"].spacing
    assert np.allclose(s.truth["grids"]["ct"]["affine"], s.ct.affine)
    assert np.allclose(s.truth["grids"]["mr"]["affine"], s.mr["t2w"].affine)
    assert s.truth["grids"]["ct"]["shape"] == list(s.ct.shape)


@pytest.mark.parametrize("region,flip", [("brain", False), ("brain", True), ("pelvis", False)])
def test_saved_transform_maps_mr_labels_onto_ct_labels(region, flip):
    s = subject(region, seed=0, flip=flip)
    carried = labels_on_mr(s).astype(int)
    labels = s.labels.array.astype(int)
    if region == "brain":
        structure = BRAIN_LABELS
    else:
        structure = [label_of("urine")]
    d = dice(np.isin(labels, structure), np.isin(carried, structure))
    assert d > 0.95, d
    assert dice(labels != 0, carried != 0) > 0.97
    # The transform is exact: the same map moved by 3 mm fits clearly worse.
    m = (np.linalg.inv(s.labels_ct.affine) @ np.asarray(s.truth["transform"]["mr_to_ct"])
         @ s.labels.affine)
    m[:3, 3] += 3.0 / np.asarray(s.labels_ct.spacing)
    moved = ndimage.affine_transform(s.labels_ct.array, m[:3, :3], m[:3, 3],
                                     output_shape=s.labels.shape, order=0).astype(int)
    assert dice(np.isin(labels, structure), np.isin(moved, structure)) < d - 0.02


def test_misalignment_is_within_the_requested_bounds():
    for flip in (False, True):
        t = subject("brain", flip=flip).truth["transform"]
        rot = np.asarray(t["mr_to_ct"])[:3, :3]
        assert np.allclose(rot @ rot.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(rot) == pytest.approx(1.0)
        angle = np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1)))
        assert t["rotation_deg"] <= 10 and np.linalg.norm(t["translation_mm"]) <= 10
        if flip:
            assert t["flip_axis"] in ("x", "y") and angle >= 170
        else:
            assert t["flip_axis"] is None and angle == pytest.approx(t["rotation_deg"])
        # The rotation centre (centre of the MR field of view) moves by the translation only.
        c = np.asarray(t["rotation_center_ct_mm"])
        moved = np.asarray(t["mr_to_ct"]) @ np.append(np.linalg.inv(t["mr_to_ct"])[:3, :3] @ c
                                                       + np.asarray(t["ct_to_mr"])[:3, 3], 1)
        assert np.allclose(moved[:3], c)


def test_point_helpers_and_registration_error():
    truth = subject("brain").truth
    pts = np.random.default_rng(0).uniform(-80, 80, (50, 3))
    assert np.allclose(ct_points_to_mr(mr_points_to_ct(pts, truth), truth), pts)
    assert np.allclose(registration_error_mm(mr_to_ct(truth), truth, pts), 0)
    shifted = mr_to_ct(truth).copy()
    shifted[:3, 3] += [0.0, 3.0, 4.0]
    assert np.allclose(registration_error_mm(shifted, truth, pts), 5.0)
    lps = np.asarray(truth["transform"]["mr_to_ct_lps"])
    flip = np.array([-1.0, -1.0, 1.0])
    assert np.allclose((lps[:3, :3] @ (pts[0] * flip) + lps[:3, 3]) * flip,
                       mr_points_to_ct(pts[0], truth))


def test_ct_on_mr_is_the_ct_through_the_true_transform():
    s = subject("brain")
    ct_on_mr = s.ct_on_mr.array
    assert s.ct_on_mr.same_grid(s.mr["t1w"])
    # Check voxels one by one: MR voxel -> MR world -> CT world -> CT index -> trilinear.
    rng = np.random.default_rng(1)
    ijk = rng.integers(0, s.labels.shape, (300, 3))
    ct_index = (np.linalg.inv(s.ct.affine) @ np.asarray(s.truth["transform"]["mr_to_ct"])
                @ np.c_[s.labels.world(ijk), np.ones(len(ijk))].T)[:3]
    expected = ndimage.map_coordinates(s.ct.array, ct_index, order=1, cval=-1024.0)
    assert np.allclose(ct_on_mr[tuple(ijk.T)], expected, atol=1e-3)
    outside = np.any((ct_index < 0) | (ct_index > np.array(s.ct.shape)[:, None] - 1), axis=0)
    assert np.all(ct_on_mr[tuple(ijk[outside].T)] == -1024.0)
    # In the brain the resampled CT shows brain HU, not bone or air.
    brain = np.isin(s.labels.array, BRAIN_LABELS)
    assert 20 < float(np.median(ct_on_mr[ndimage.binary_erosion(brain, iterations=2)])) < 50
