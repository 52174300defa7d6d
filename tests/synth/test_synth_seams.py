"""No tile seams: whole slices for fully convolutional models, Hann-blended tiles otherwise.

A tile's border is where a network's zero padding (and per-tile statistics such as instance
norm) show; translated tile by tile, those borders became lines of 8-18 HU in real outputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from medxlate.io.volume import Volume
from medxlate.models.registry import get_spec
from medxlate.preprocess.mask import body_mask
from medxlate.intensity import DEFAULT_NORMALISATION, denormalise_ct, normalise
from medxlate.synth.model import load_model
from medxlate.synth.slicer import SlicePlan, taper, tile_starts, whole_slice_size
from medxlate.synth.volume import SynthOptions, synthesize_volume
from tests.synth.conftest import TRAIN_SPACING, make_checkpoint, phantom_mr


def padded_mean(x: torch.Tensor) -> torch.Tensor:
    """A 5x5 mean with zero padding: a fully convolutional 'network' with border effects."""
    c = x.shape[1] // 2
    return F.conv2d(x[:, c:c + 1], torch.full((1, 1, 5, 5), 1 / 25.0), padding=2)


@pytest.fixture()
def mean_generator(monkeypatch):
    from medxlate.models.pix2pix.family import Pix2Pix

    monkeypatch.setattr(Pix2Pix, "translate", lambda self, nets, source, **kw:
                        padded_mean(source))


def _seams(out: np.ndarray, edges, lo: int, hi: int) -> tuple[float, float]:
    """Mean |difference| of neighbours across tile edges along axis 0 of ``out[lo:hi]``, and
    of all other neighbour pairs there."""
    diff = np.abs(np.diff(out[lo:hi], axis=0))  # diff[i] = out[lo+i+1] - out[lo+i]
    at_edge = np.zeros(len(diff), bool)
    for e in edges:
        if lo < e < hi:
            at_edge[e - lo - 1] = True
    return float(diff[at_edge].mean()), float(diff[~at_edge].mean())


def test_taper_weights():
    # 32-pixel tile, shared low edge: m = 4 zero pixels, sin^2 rise over r = 8, then 1
    w = taper(32, True, False).astype(np.float64)
    i = np.arange(4, 12)
    np.testing.assert_allclose(w[4:12], np.sin(np.pi / 2 * (i - 3.5) / 8) ** 2, atol=1e-6)
    assert (w[:4] == 0).all() and (w[12:] == 1).all()
    np.testing.assert_array_equal(taper(32, False, True), w[::-1])
    assert (taper(32, False, False) == 1).all()
    # neighbours 16 apart: wherever one is 0 the other is 1
    both = taper(32, True, True)
    first, second = both[16:], both[:16]  # tile at 0 and tile at 16, on pixels 16..31
    assert (second[first == 0] == 1).all() and (first[second == 0] == 1).all()
    assert (first == 0).any() and (second == 0).any()


def test_whole_slice_size():
    assert whole_slice_size((20, 20), (32, 32)) == (32, 32)       # never below training size
    assert whole_slice_size((100, 33), (32, 32)) == (128, 64)     # multiples of 32
    assert whole_slice_size((100, 33), (256, 48)) == (256, 48)
    assert whole_slice_size((300, 50), (256, 48)) == (304, 64)    # 16 divides 256 and 48


def test_blended_tiles_show_no_seam():
    """A fixed-size 'network' whose tiles disagree (offset by their own mean, darkened near
    their border): blended, the step across each tile edge is no larger than elsewhere."""
    n_a, n_b, size = 150, 32, 32
    a, b = np.meshgrid(np.arange(n_a), np.arange(n_b), indexing="ij")
    vol = (0.01 * a + 0.02 * b).astype(np.float32)[None]
    plan = SlicePlan(vol.shape, (size, size))
    total, weights = np.zeros_like(vol), np.zeros_like(vol)
    i = np.arange(size)
    border = np.minimum(i, size - 1 - i)
    darkening = 0.5 * np.exp(-np.minimum.outer(border, border) / 2.0)
    batch = plan.batch(vol, plan.tiles, 0.0)[:, 0]
    preds = batch + 0.3 * batch.mean(axis=(1, 2), keepdims=True) - darkening
    plan.accumulate(total, weights, plan.tiles, preds)
    out = (total / weights)[0]
    starts = sorted({t[1] for t in plan.tiles})
    assert len(starts) >= 4
    edges = [s for s in starts] + [s + size for s in starts]
    edge, elsewhere = _seams(out, edges, 0, n_a)
    assert edge <= elsewhere, (edge, elsewhere)


def _volume(shape=(90, 80, 3)) -> Volume:
    arr = phantom_mr(shape)
    return Volume(arr, np.diag([*TRAIN_SPACING, 1.0]), "MR")


def test_fully_convolutional_model_runs_on_the_whole_slice(tmp_path, mean_generator):
    """pix2pix (32x32 training slices) on a 90x80 body: one tile per slice, and the output is
    the 5x5 mean of the whole padded slice (oracle: scipy on the full plane)."""
    assert get_spec("pix2pix").extra["fully_convolutional"] is True
    model = load_model("pix2pix", make_checkpoint(tmp_path / "w.safetensors"))
    vol = _volume()
    sct, _, info = synthesize_volume(vol, model, SynthOptions("mri2ct", "one-shot"))
    assert info["tiles"] == vol.shape[2]
    mask = body_mask(vol, "MR")
    x, _ = normalise(np.where(mask, vol.array, 0.0), "MR", DEFAULT_NORMALISATION, mask=mask)
    background = float(x[~mask].max())
    padded = np.pad(x, ((8, 8), (8, 8), (0, 0)), constant_values=background)
    want = denormalise_ct(ndimage.uniform_filter(padded, size=(5, 5, 1), mode="constant",
                                                 cval=0.0)[8:-8, 8:-8], DEFAULT_NORMALISATION)
    np.testing.assert_allclose(sct.array[mask], want[mask], atol=0.5)


def test_fixed_size_model_tiles_without_seams(tmp_path, mean_generator, monkeypatch):
    """The same model declared fixed-size is tiled; its tile borders (zero padding) blend
    away: across tile edges the HU change is no larger than elsewhere in the body."""
    monkeypatch.setitem(get_spec("pix2pix").extra, "fully_convolutional", False)
    model = load_model("pix2pix", make_checkpoint(tmp_path / "w.safetensors"))
    # a smooth body (an ellipse with a gentle ramp, no noise): only seams could make steps
    x, y, _ = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in (90, 80, 3)],
                          indexing="ij")
    body = ((x - 45) / 38) ** 2 + ((y - 40) / 34) ** 2 < 1.0
    vol = Volume(np.where(body, 300.0 + 4.0 * x + 2.0 * y, 0.0).astype(np.float32),
                 np.diag([*TRAIN_SPACING, 1.0]), "MR")
    sct, _, info = synthesize_volume(vol, model, SynthOptions("mri2ct", "one-shot"))
    mask = body_mask(vol, "MR")
    rows = np.flatnonzero(mask.any(axis=(1, 2)))
    lo, hi = int(rows[0]) - 4, int(rows[-1]) + 5  # the body box along x (margin 4)
    starts = tile_starts(lo, hi, 32)
    assert info["tiles"] > vol.shape[2] and len(starts) >= 3
    inner = ndimage.binary_erosion(mask, np.ones((7, 7, 1)))  # away from the body outline
    out = np.where(inner, sct.array, np.nan)
    diff = np.abs(np.diff(out, axis=0))
    at_edge = np.zeros(diff.shape[0], bool)
    for s in starts:
        for e in (s, s + 32):
            if lo < e < hi:
                at_edge[e - 1] = True
    edge, elsewhere = np.nanmean(diff[at_edge]), np.nanmean(diff[~at_edge])
    # the ramp gives ~22 HU per voxel everywhere; a seam adds to it (float32 noise aside)
    assert edge <= elsewhere + 0.01, (edge, elsewhere)


def test_crop_trained_models_run_on_tiles_of_their_training_size():
    """Whole slices only for fully convolutional nets trained on whole slices: instance/group
    norm and attention see their whole input, so a crop-trained net stays at its crop size."""
    from types import SimpleNamespace

    from medxlate.synth.volume import whole_slices

    def model(flag, trained, data):
        return SimpleNamespace(spec=SimpleNamespace(extra={"fully_convolutional": flag}),
                               config={"slice_size": trained},
                               meta=SimpleNamespace(data={"slice_size": data}))

    assert whole_slices(model(True, [128, 128], [128, 128]))
    assert whole_slices(model(True, None, [128, 128]))
    assert not whole_slices(model(True, [64, 64], [128, 128]))   # syndiff/cyclegan demos
    assert not whole_slices(model(False, [128, 128], [128, 128]))
