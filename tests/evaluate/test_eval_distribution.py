"""Set metrics of generated images: Frechet distance and Gaussian KL against closed forms,
SSIM against scikit-image, FDS/DS on constructed sets, the Inception path with a randomly
initialised network of the pytorch-fid layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medxlate.errors import InputError
from medxlate.evaluate import distribution as dist


def test_frechet_distance_closed_form_diagonal_and_rotated():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    a, b = rng.uniform(0.2, 3.0, 4), rng.uniform(0.2, 3.0, 4)
    # Commuting covariances: W2^2 = |mu1 - mu2|^2 + sum (sqrt a_i - sqrt b_i)^2.
    want = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    assert dist.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want, 1e-10)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    got = dist.frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(want, rel=1e-9)
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2.
    assert dist.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)


def test_frechet_distance_non_commuting_by_matrix_square_root():
    from scipy.linalg import sqrtm

    s1 = np.array([[2.0, 0.5], [0.5, 1.0]])
    s2 = np.array([[1.0, -0.3], [-0.3, 0.5]])
    r = sqrtm(s1)
    want = np.trace(s1) + np.trace(s2) - 2 * np.trace(sqrtm(r @ s2 @ r)).real
    assert dist.frechet_distance([0, 0], s1, [0, 0], s2) == pytest.approx(want, rel=1e-9)


def test_fid_of_samples_approaches_the_gaussian_answer():
    rng = np.random.default_rng(1)
    real = rng.normal(0.0, 1.0, size=(20000, 3))
    fake = rng.normal(0.5, 2.0, size=(20000, 3))
    # 3 * 0.5^2 + 3 * (1 - 2)^2 = 3.75
    assert dist.fid_from_features(real, fake) == pytest.approx(3.75, rel=0.03)


def test_gaussian_kl_closed_forms():
    # 1-D: log(s1/s0) + (s0^2 + (m0 - m1)^2) / (2 s1^2) - 1/2.
    m0, s0, m1, s1 = 0.3, 0.5, -0.2, 1.5
    want = math.log(s1 / s0) + (s0 ** 2 + (m0 - m1) ** 2) / (2 * s1 ** 2) - 0.5
    assert dist.gaussian_kl([m0], [[s0 ** 2]], [m1], [[s1 ** 2]]) == pytest.approx(want)
    # Independent dimensions add.
    got = dist.gaussian_kl([m0, 0.0], np.diag([s0 ** 2, 1.0]), [m1, 0.0], np.diag([s1 ** 2, 4.0]))
    assert got == pytest.approx(want + math.log(2.0) + 1 / 8 - 0.5)


def test_inception_score_extremes():
    # Identical predictions: p(y|x) = p(y), IS = 1. One-hot on k distinct classes: IS = k.
    assert dist.inception_score(np.zeros((6, 10)), splits=1)[0] == pytest.approx(1.0)
    logits = np.full((4, 10), -1e4)
    logits[np.arange(4), np.arange(4)] = 0.0
    assert dist.inception_score(logits, splits=1)[0] == pytest.approx(4.0, rel=1e-6)


def test_pairwise_ssim_matches_scikit_image():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(2)
    imgs = rng.uniform(size=(4, 20, 24))
    imgs[1] = 0.7 * imgs[0] + 0.1
    got = dist.pairwise_ssim(imgs)
    for i in range(4):
        for j in range(4):
            want = structural_similarity(imgs[i], imgs[j], data_range=1.0, win_size=7)
            assert got[i, j] == pytest.approx(want, abs=1e-9)


def _blobs(rng, n, size=24, spread=1.0):
    yy, xx = np.mgrid[:size, :size]
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(6, size - 6, 2) * spread + (1 - spread) * size / 2
        r = rng.uniform(3, 6)
        out.append((((yy - cy) ** 2 + (xx - cx) ** 2) < r * r).astype(float) * 0.8 + 0.1)
    return np.stack(out)


def test_ds_zero_for_identical_sets_and_large_for_mode_collapse():
    rng = np.random.default_rng(3)
    real = _blobs(rng, 16)
    assert dist.ds(real, real.copy()) == pytest.approx(0.0, abs=1e-12)
    collapsed = np.repeat(real[:2], 8, axis=0) + rng.normal(0, 1e-3, (16, 24, 24))
    # Near-duplicates: every nearest SSIM is ~1, far from the real set's spread.
    assert dist.nearest_ssim(collapsed).min() > 0.99
    assert dist.ds(real, collapsed) > 1.0


def test_fds_near_zero_for_identical_sets_and_large_for_other_images():
    rng = np.random.default_rng(4)
    real = _blobs(rng, 20)
    assert dist.fds(real, real.copy(), seed=0) < 0.05
    noise = rng.uniform(size=(20, 24, 24))
    assert dist.fds(real, noise, seed=0) > 1.0


def _random_inception(tmp_path):
    """A randomly initialised Inception-v3 of the pytorch-fid layout, saved as a state dict
    (He-normal convolutions so activations keep their scale through 90+ layers)."""
    from medxlate.evaluate.inception import InceptionV3

    torch.manual_seed(0)
    net = InceptionV3()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    state = net.state_dict()
    # Key names of the pytorch-fid / torch-fidelity files (torchvision's Inception3 names).
    for key in ("Conv2d_1a_3x3.conv.weight", "Mixed_5b.branch_pool.bn.running_var",
                "Mixed_7c.branch3x3dbl_3b.conv.weight", "fc.weight"):
        assert key in state
    assert state["fc.weight"].shape == (1008, 2048)
    weights = tmp_path / "pt_inception-random.pth"
    torch.save(state, weights)
    return weights


def test_inception_file_to_fid_and_is(tmp_path):
    from medxlate.evaluate.inception import inception_outputs, load_inception

    net = load_inception(_random_inception(tmp_path))
    rng = np.random.default_rng(5)
    real, noise = _blobs(rng, 4, size=32), rng.uniform(size=(4, 32, 32))
    f_real, logits = inception_outputs(net, real, size=75)
    f_again, _ = inception_outputs(net, real.copy(), size=75)
    f_noise, _ = inception_outputs(net, noise, size=75)
    assert f_real.shape == (4, 2048) and logits.shape == (4, 1008)
    same = dist.fid_from_features(f_real.numpy(), f_again.numpy())
    other = dist.fid_from_features(f_real.numpy(), f_noise.numpy())
    assert other > 1e-3 and abs(same) < 1e-6 * other      # 0 up to float round-off
    # IS = exp(E KL(p(y|x) || p(y))) recomputed here from the logits by hand.
    p = torch.softmax(logits, 1).numpy()
    want = math.exp(np.mean([(pi * np.log(pi / p.mean(0))).sum() for pi in p]))
    assert dist.inception_score(logits.numpy(), splits=1)[0] == pytest.approx(want, rel=1e-9)
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(InputError, match="layout"):
        load_inception(bad)
    with pytest.raises(InputError, match="not found"):
        load_inception(tmp_path / "absent.pth")


@pytest.mark.slow
def test_full_path_at_299_with_a_random_inception(tmp_path):
    rng = np.random.default_rng(5)
    real = _blobs(rng, 4, size=32)
    weights = _random_inception(tmp_path)
    same = dist.distribution_metrics(real, real.copy(), weights, is_splits=1)
    other = dist.distribution_metrics(real, rng.uniform(size=(4, 32, 32)), weights, is_splits=1)
    assert other["fid"] > 1e-3 and abs(same["fid"]) < 1e-6 * other["fid"]
    assert other["is"] >= 1.0


def test_real_slices_larger_than_generated_are_cut_into_seeded_crops():
    imgs = np.arange(3 * 6 * 7, dtype=float).reshape(3, 6, 7)
    out, how = dist.match_size(imgs, (4, 4), seed=1)
    assert how == "random_crop" and out.shape == (3, 4, 4)
    for im, crop in zip(imgs, out):                       # a contiguous window of its slice
        y, x = divmod(int(crop[0, 0] - im[0, 0]), 7)
        assert np.array_equal(crop, im[y:y + 4, x:x + 4])
    again, _ = dist.match_size(imgs, (4, 4), seed=1)
    assert np.array_equal(out, again)
    assert dist.match_size(imgs[:, :3, :3], (4, 4))[1] == "resized"
