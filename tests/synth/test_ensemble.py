"""Sliding windows, mirroring TTA and ensembles against independent oracles."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medxlate.io.volume import Volume
from medxlate.synth.ensemble import mean_std, mirror, mirror_views, synthesize_ensemble
from medxlate.synth.volume import SynthOptions, synthesize_volume

NORM = {"ct": {"kind": "window", "low": -1024.0, "high": 3000.0},
        "mr": {"kind": "percentile", "low_pct": 0.5, "high_pct": 99.5}}


class _Fake:
    def __init__(self, fn):
        self.fn = fn

    def multiple(self, config):
        return 4

    def translate(self, nets, source, *, config, sampler, steps, eta, generator, callback=None):
        return self.fn(source)


def _model(fn, window, name="w.safetensors", mirror_axes=None):
    return SimpleNamespace(
        spec=SimpleNamespace(spatial_dims="3d", name="unet-3d"), family=_Fake(fn), nets={},
        meta=SimpleNamespace(normalisation=NORM, data={"spacing_mm": None}),
        config={"volume_size": window, "sw_overlap": 0.5, "mirror_axes": mirror_axes},
        device=torch.device("cpu"), weights=name, sha256=name * 2, members=[])


def _phantom() -> Volume:
    """An asymmetric body (ramp along every axis) on a grid at its own spacing."""
    shape = (28, 24, 20)
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    body = ((i - 13) / 10) ** 2 + ((j - 11) / 9) ** 2 + ((k - 9) / 7) ** 2 < 1
    array = np.where(body, 300.0 + 20.0 * i + 7.0 * j - 5.0 * k, 0.0).astype(np.float32)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    return Volume(array, affine, "MR")


def _opts(tta=False):
    return SynthOptions("mri2ct", "one-shot", tta=tta)


def _blur(x: torch.Tensor) -> torch.Tensor:
    """A mirror-equivariant network: 3x3x3 mean with replicated edges."""
    return F.avg_pool3d(F.pad(x, [1] * 6, mode="replicate"), 3, stride=1) * 0.5


def test_mirror_views_are_every_subset():
    assert mirror_views([2, 0]) == [(), (0,), (2,), (0, 2)]
    a = np.arange(24).reshape(2, 3, 4)
    assert np.array_equal(mirror(mirror(a, (0, 2)), (0, 2)), a)
    assert np.array_equal(mirror(a, (1,)), a[:, ::-1])


def test_mean_std_against_numpy():
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(5, 6, 7)).astype(np.float32) * 100 for _ in range(4)]
    mean, std = mean_std(arrays)
    np.testing.assert_allclose(mean, np.mean(arrays, axis=0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(std, np.std(arrays, axis=0), rtol=1e-5, atol=1e-4)


def test_sliding_window_equals_one_pass_when_the_volume_fits_one_window():
    """MONAI's Gaussian-weighted windows over a volume the size of one window give exactly
    the network's output on the whole volume (the weights normalise out)."""
    from monai.inferers import sliding_window_inference

    from medxlate.models.unet.family import build_net

    torch.manual_seed(0)
    net = build_net({"filters": [4, 8, 8], "spatial": "3d", "deep_supervision": 1}).eval()
    x = torch.randn(1, 1, 16, 24, 16)
    with torch.no_grad():
        whole = net(x)
        windows = sliding_window_inference(x, [16, 24, 16], 1, net, overlap=0.5,
                                           mode="gaussian", sigma_scale=0.125)
    torch.testing.assert_close(windows, whole, rtol=1e-5, atol=1e-5)


def test_tta_of_a_mirror_equivariant_network_equals_its_plain_output():
    vol = _phantom()
    model = _model(_blur, [32, 32, 24])
    plain, _, _ = synthesize_volume(vol, model, _opts())
    tta, std, info = synthesize_ensemble(vol, model, _opts(tta=True))
    assert info["passes"] == 8 and info["tta_views"][-1] == [0, 1, 2]
    np.testing.assert_allclose(tta.array, plain.array, atol=1e-3)
    assert float(std.array.max()) < 1e-2


def test_tta_of_a_non_equivariant_network_is_the_mean_of_mirrored_passes():
    """A network that adds a ramp along the first axis: with TTA along axis 0 only, the
    output is the mean of the plain pass and the mirrored pass mirrored back."""
    def ramp(x):
        r = torch.linspace(-0.2, 0.2, x.shape[2]).reshape(1, 1, -1, 1, 1)
        return x * 0.5 + r

    vol = _phantom()
    model = _model(ramp, [32, 32, 24], mirror_axes=[0])
    plain, _, _ = synthesize_volume(vol, model, _opts())
    flipped, _, _ = synthesize_volume(vol.with_array(vol.array[::-1].copy()), model, _opts())
    tta, std, _ = synthesize_ensemble(vol, model, _opts(tta=True))
    expected = (plain.array + flipped.array[::-1]) / 2
    np.testing.assert_allclose(tta.array, expected, atol=1e-3)
    np.testing.assert_allclose(std.array, np.abs(plain.array - flipped.array[::-1]) / 2,
                               atol=1e-3)
    assert not np.allclose(plain.array, tta.array, atol=1.0)


def test_ensemble_mean_and_std_in_hu():
    """Two members answering constants 0.0 and 0.5 (network units): 988 and 1994 HU inside
    the body (CT window -1024..3000), so mean 1491 HU and std 503 HU; -1024 HU and 0 outside."""
    vol = _phantom()
    a = _model(lambda x: torch.zeros_like(x), [32, 32, 24], "a")
    b = _model(lambda x: torch.full_like(x, 0.5), [32, 32, 24], "b")
    a.members = [a, b]
    mean, std, info = synthesize_ensemble(vol, a, _opts())
    body = mean.array > -1024
    assert body.sum() > 1000
    np.testing.assert_allclose(mean.array[body], 1491.0, atol=1e-2)
    np.testing.assert_allclose(std.array[body], 503.0, atol=1e-2)
    assert np.all(mean.array[~body] == -1024) and np.all(std.array[~body] == 0)
    assert [m["weights"] for m in info["members"]] == ["a", "b"]


@pytest.mark.parametrize("extra, ok", [([], False), (["--tta"], True)])
def test_uncertainty_needs_several_passes(tmp_path, extra, ok):
    from medxlate.synth.run import SynthesizeRequest, check_request

    req = SynthesizeRequest(model="unet-3d", inputs=tmp_path / "in.nii.gz",
                            out=tmp_path / "o.nii.gz", uncertainty=tmp_path / "u.nii.gz",
                            tta=bool(extra))
    if ok:
        check_request(req)
    else:
        from medxlate.errors import UsageError

        with pytest.raises(UsageError, match="--tta, or several --weights"):
            check_request(req)
