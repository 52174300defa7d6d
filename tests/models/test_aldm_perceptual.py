"""ALDM's optional perceptual term: Inception-v3 features from a local file, 2.5D slices."""

from __future__ import annotations

import pytest
import torch

from medxlate.errors import InputError, UsageError
from medxlate.evaluate.inception import InceptionV3
from medxlate.models.aldm.perceptual import (
    InceptionFeatures,
    load_features,
    normalised_distance,
    perceptual_25d,
    slices_25d,
    to_images,
)
from medxlate.train import train
from tests.models.aldm_helpers import TINY_ALDM, make_volume_dataset


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    """A randomly initialised Inception-v3 in the pytorch-fid layout (with its BatchNorm
    statistics perturbed so that loading them is visible)."""
    torch.manual_seed(3)
    net = InceptionV3()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("inception") / "pt_inception.pth"
    torch.save(net.state_dict(), path)
    return path, net.eval()


def test_distance_of_hand_computed_features():
    # Channel vectors (3, 4) and (4, 3) at one position: unit vectors (0.6, 0.8) and
    # (0.8, 0.6), squared difference summed over channels = 0.04 + 0.04.
    a = torch.tensor([3.0, 4.0]).reshape(1, 2, 1, 1)
    b = torch.tensor([4.0, 3.0]).reshape(1, 2, 1, 1)
    assert normalised_distance(a, b).item() == pytest.approx(0.08, abs=1e-6)
    # Scale does not matter; opposite directions give the maximum, 4.
    assert normalised_distance(a, 5 * a).item() == pytest.approx(0.0, abs=1e-9)
    assert normalised_distance(a, -a).item() == pytest.approx(4.0, abs=1e-6)


def test_features_are_the_full_networks_activations(inception_file):
    path, full = inception_file
    part = InceptionFeatures()
    part.load_state_dict(load_features(path))
    part.eval()
    seen = {}
    for name in ("Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_5d"):
        getattr(full, name).register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, out))
    x = torch.rand(2, 1, 80, 90) * 2 - 1
    with torch.no_grad():
        full(x.expand(-1, 3, -1, -1))
        mine = part(x)
    for got, name in zip(mine, ("Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_5d")):
        torch.testing.assert_close(got, seen[name], rtol=0, atol=1e-6)


def test_a_file_of_another_layout_is_an_input_error(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, path)
    with pytest.raises(InputError, match="perceptual= .*Inception-v3 layout"):
        load_features(path)
    with pytest.raises(InputError, match="file not found"):
        load_features(tmp_path / "absent.pth")


def test_slices_along_each_axis():
    x = torch.arange(2 * 4 * 5 * 6, dtype=torch.float32).reshape(2, 1, 4, 5, 6)
    picks = slices_25d(x, 0.5, torch.Generator().manual_seed(0))
    assert [len(p) for p in picks] == [2, 3, 3]
    index = picks[1]
    images = to_images(x, 1, index)
    assert images.shape[:2] == (2 * 3, 1) and min(images.shape[2:]) >= 75
    # Without enlargement the images are exactly the coronal slices, batch-major.
    raw = x.index_select(3, index).movedim(3, 1).reshape(-1, 1, 4, 6)
    assert torch.equal(torch.nn.functional.interpolate(raw, size=images.shape[2:],
                                                       mode="bilinear", align_corners=False),
                       images)


def test_zero_for_identical_volumes_and_positive_otherwise(inception_file):
    path, _ = inception_file
    net = InceptionFeatures()
    net.load_state_dict(load_features(path))
    net.eval()
    a = torch.rand(1, 1, 8, 8, 8) * 2 - 1
    b = a.flip(-1)
    same = perceptual_25d(net, a, a, 0.5, torch.Generator().manual_seed(1))
    diff = perceptual_25d(net, b, a, 0.5, torch.Generator().manual_seed(1))
    assert same.item() == pytest.approx(0.0, abs=1e-10)
    assert diff.item() > 1e-4


@pytest.fixture(scope="module")
def volume_dataset(tmp_path_factory):
    return make_volume_dataset(tmp_path_factory.mktemp("aldm-p") / "DATASET")


def test_training_adds_the_weighted_term_and_needs_a_file(volume_dataset, inception_file,
                                                          tmp_path):
    path, _ = inception_file
    base = {"base": "demo", **TINY_ALDM, "steps": 1, "adversarial_weight": 0.0,
            "keep_checkpoints": 0}
    stage = {"stage": "autoencoder"}
    with pytest.raises(UsageError, match="perceptual=PATH"):
        train("aldm", volume_dataset, tmp_path / "a", device="cpu", overrides=stage,
              config={**base, "perceptual_weight": 0.5})
    run = train("aldm", volume_dataset, tmp_path / "b", device="cpu", overrides=stage,
                config={**base, "perceptual_weight": 0.5, "perceptual": str(path)})
    row = run.losses[0]
    assert row["perceptual"] > 0
    others = row["recon_l1"] + row["codebook"] + TINY_ALDM.get("cycle_weight", 0.1) * row["cycle"]
    assert row["loss"] == pytest.approx(others + 0.5 * row["perceptual"], rel=1e-5)
