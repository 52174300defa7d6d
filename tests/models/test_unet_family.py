"""The U-Net family's pieces against numpy and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medxlate.models.unet.augment import augment_batch
from medxlate.models.unet.family import FAMILY, build_net
from medxlate.models.unet.loss import (
    deep_supervision_weights,
    hu_to_unit,
    masked_l1,
    regression_loss,
    tissue_l1,
)

NORM = {"ct": {"kind": "window", "low": -1024.0, "high": 3000.0}}
OFF = {k: 0.0 for k in ("rotate_p", "scale_p", "mirror_p", "gamma_p", "noise_p", "blur_p",
                        "lowres_p")}


def test_masked_l1_against_numpy():
    rng = np.random.default_rng(0)
    p, t = rng.normal(size=(2, 1, 5, 6)), rng.normal(size=(2, 1, 5, 6))
    m = rng.random((2, 1, 5, 6)) > 0.5
    got = masked_l1(torch.tensor(p), torch.tensor(t), torch.tensor(m))
    assert float(got) == pytest.approx(np.abs(p - t)[m].mean(), rel=1e-6)


def test_deep_supervision_weights_halve_and_sum_to_one():
    assert deep_supervision_weights(3) == pytest.approx([4 / 7, 2 / 7, 1 / 7])


def test_hu_to_unit_closed_form():
    assert hu_to_unit(-1024.0, NORM) == -1.0 and hu_to_unit(3000.0, NORM) == 1.0
    assert hu_to_unit(988.0, NORM) == pytest.approx(0.0)


def test_tissue_l1_by_hand():
    # target: air -1 (two voxels), soft 0 (one), bone 0.5 (one); errors 0.2, 0.4 | 0.3 | 0.1
    t = torch.tensor([-1.0, -1.0, 0.0, 0.5, 0.0])
    p = torch.tensor([-0.8, -0.6, 0.3, 0.4, 9.0])
    m = torch.tensor([1, 1, 1, 1, 0])
    got = tissue_l1(p, t, m, (-0.5, 0.2))
    assert float(got) == pytest.approx(((0.2 + 0.4) / 2 + 0.3 + 0.1) / 3)


def test_regression_loss_weights_the_heads():
    t = torch.zeros(1, 1, 4, 4)
    m = torch.ones(1, 1, 4, 4)
    outs = [torch.full_like(t, 0.1), torch.full_like(t, 0.2), torch.full_like(t, 0.4)]
    loss, logs = regression_loss(outs, t, m, 0.0, (-0.5, 0.2))
    assert float(loss) == pytest.approx(4 / 7 * 0.1 + 2 / 7 * 0.2 + 1 / 7 * 0.4)
    assert logs["l1"] == pytest.approx(0.1)


def test_augment_seeded_and_mirror_is_a_flip():
    x = torch.randn(2, 3, 8, 10)
    y, m = torch.randn(2, 1, 8, 10), (torch.rand(2, 1, 8, 10) > 0.5).float()
    opts = {**OFF, "rotate_p": 1.0, "rotate_deg": 15.0, "scale_p": 1.0, "scale": [0.9, 1.1],
            "gamma_p": 1.0, "gamma": [0.7, 1.5], "noise_p": 1.0, "noise_std": 0.1,
            "blur_p": 1.0, "blur_sigma": [0.5, 1.0], "lowres_p": 1.0, "lowres": [0.5, 1.0]}
    a = augment_batch(x, y, m, opts, torch.Generator().manual_seed(3))
    b = augment_batch(x, y, m, opts, torch.Generator().manual_seed(3))
    for u, v in zip(a, b):
        assert torch.equal(u, v)
    assert set(torch.unique(a[2]).tolist()) <= {0.0, 1.0}            # mask stays a mask
    flip = augment_batch(x, y, m, {**OFF, "mirror_p": 1.0}, torch.Generator().manual_seed(0),
                         mirror_axes=[1])
    assert torch.equal(flip[0], x.flip(3)) and torch.equal(flip[1], y.flip(3))
    same = augment_batch(x, y, m, OFF, torch.Generator().manual_seed(0))
    assert torch.equal(same[0], x) and torch.equal(same[2], m)


def test_state_dict_names_each_tensor_once_and_round_trips():
    cfg = {"filters": [4, 8, 8], "spatial": "3d", "deep_supervision": 1}
    torch.manual_seed(0)
    a = build_net(cfg).eval()
    state = a.state_dict()
    assert not any(k.startswith("skip_layers.") for k in state)
    ptrs = [v.data_ptr() for v in state.values()]
    assert len(ptrs) == len(set(ptrs))
    torch.manual_seed(1)
    b = build_net(cfg).eval()
    b.load_state_dict(state)
    x = torch.randn(1, 1, 8, 8, 8)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    with pytest.raises(RuntimeError):
        b.load_state_dict({k: v for k, v in state.items() if "bottleneck" not in k})


def test_translate_is_one_eval_pass_in_range():
    cfg = {"filters": [4, 8, 8], "spatial": "2.5d", "context": 1, "deep_supervision": 1}
    nets = FAMILY.build(cfg)
    out = FAMILY.translate(nets, torch.randn(2, 3, 16, 16) * 10, config=cfg)
    assert out.shape == (2, 1, 16, 16) and float(out.abs().max()) <= 1.0
    assert nets["unet"].training  # left as it was found
