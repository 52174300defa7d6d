"""The 3D synthesis path: crop/pad undone voxel for voxel, sliding-window blending seams."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from medxlate.io.volume import Volume
from medxlate.preprocess.mask import body_mask
from medxlate.synth.volume import SynthOptions, synthesize_volume
from medxlate.synth.volume3d import crop_box, n_windows

NORM = {"ct": {"kind": "window", "low": -1024.0, "high": 3000.0},
        "mr": {"kind": "percentile", "low_pct": 0.5, "high_pct": 99.5}}


class _Fake:
    """A 3D family whose translate is a fixed function; counts its calls."""

    def __init__(self, fn):
        self.fn, self.calls, self.shapes = fn, 0, set()

    def multiple(self, config):
        return 4

    def translate(self, nets, source, *, config, sampler, steps, eta, generator, callback=None):
        self.calls += 1
        self.shapes.add(tuple(source.shape[2:]))
        return self.fn(source)


def _model(fn, window, overlap=0.5):
    return SimpleNamespace(spec=SimpleNamespace(spatial_dims="3d"), family=_Fake(fn), nets={},
                           meta=SimpleNamespace(normalisation=NORM, data={"spacing_mm": None}),
                           config={"volume_size": window, "sw_overlap": overlap},
                           device=torch.device("cpu"))


def _phantom() -> Volume:
    """An off-centre ellipsoid with a smooth intensity ramp, on an odd, anisotropic grid."""
    shape = (37, 29, 23)
    i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    body = ((i - 15) / 11) ** 2 + ((j - 16) / 9) ** 2 + ((k - 10) / 7) ** 2 < 1
    array = np.where(body, 300.0 + 20.0 * i + 7.0 * j - 5.0 * k, 0.0).astype(np.float32)
    affine = np.diag([1.2, 0.9, 2.5, 1.0])
    affine[:3, 3] = [-20.0, 13.5, 40.0]
    return Volume(array, affine, "MR")


def _expected_identity(vol: Volume) -> np.ndarray:
    """MR percentile window inside the body, mapped to 0..1000 (the synthetic-MR scale)."""
    mask = body_mask(vol, modality="MR")
    lo, hi = np.percentile(vol.array[mask], [0.5, 99.5])
    scaled = (np.clip(vol.array, lo, hi) - lo) / (hi - lo) * 1000.0
    return np.where(mask, scaled, 0.0)


@pytest.mark.parametrize("window", [[32, 32, 16], [8, 8, 8]], ids=["whole-box", "sliding"])
def test_identity_model_gives_back_the_input_on_its_exact_grid(window):
    vol = _phantom()
    model = _model(lambda x: x.clone(), window)
    opts = SynthOptions("mri2ct", "ddim", source="t1", target="t2")
    out, std, info = synthesize_volume(vol, model, opts)
    assert out.shape == vol.shape and np.array_equal(out.affine, vol.affine) and std is None
    np.testing.assert_allclose(out.array, _expected_identity(vol), rtol=0, atol=2e-3)
    assert model.family.shapes == {tuple(window)}          # the model only ever sees windows
    expected_calls = 1 if info["windows"] == 1 else n_windows(info["box_size"], window, 0.5)
    assert model.family.calls == expected_calls
    assert (info["windows"] == 1) == (window == [32, 32, 16])


def test_gaussian_blending_of_a_constant_prediction_has_no_seams():
    vol = _phantom()
    model = _model(lambda x: torch.full_like(x, 0.3), [8, 8, 8])
    out, _, info = synthesize_volume(vol, model, SynthOptions("mri2ct", "ddim", source="t1",
                                                              target="t2"))
    assert info["windows"] > 20
    inside = body_mask(vol, modality="MR")
    # (0.3 + 1) / 2 * 1000 everywhere in the body: blending weights sum to one at every voxel.
    np.testing.assert_allclose(out.array[inside], 650.0, rtol=0, atol=1e-3)
    assert (out.array[~inside] == 0.0).all()


def test_crop_box_covers_the_body_with_model_sized_multiples():
    mask = np.zeros((30, 40, 20), bool)
    mask[3:20, 10:31, 2:5] = True
    start, size = crop_box(mask, [16, 16, 16], 4)
    assert size == [20, 24, 16]
    assert start == [1, 8, -5]
