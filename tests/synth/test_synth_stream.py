"""Issue 16: slices of consecutive volumes share batches (synth.stream.TileStream).

Oracles: a closed form (a fake network that maps every tile to 0.5 x its centre slice, so
each volume's HU output is known exactly), the model-call counts ceil(sum t / b) vs
sum ceil(t / b), and the per-volume path (``share_batches=False``: batching as before).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from medxlate.errors import PartialFailure
from medxlate.io.readers import read_volume
from medxlate.intensity import DEFAULT_NORMALISATION
from medxlate.synth.run import SynthesizeRequest, run_synthesize
from medxlate.synth.slicer import SlicePlan
from medxlate.synth.stream import TileStream, can_share
from medxlate.synth.volume import Prepared, SynthOptions
from tests.synth.conftest import phantom_mr, write_nifti

AFF = np.diag([1.5, 1.5, 2.0, 1.0])
POISON = 7.0  # a tile holding this value makes the fake network fail


class HalfNet:
    """A deterministic 'network': 0.5 x the centre slice of each tile; records batch sizes."""

    def __init__(self):
        self.batches = []

    def translate(self, nets, source, *, config, sampler, steps, eta, generator):
        self.batches.append(source.shape[0])
        if bool((source == POISON).any()):
            raise ValueError("poisoned tile")
        k = source.shape[1] // 2
        return source[:, k:k + 1] * 0.5


def fake_model():
    return SimpleNamespace(device=torch.device("cpu"), nets={}, family=HalfNet(),
                           meta=SimpleNamespace(normalisation=DEFAULT_NORMALISATION))


def prepared(n_slices: int, seed: int, size=(6, 5), poison: bool = False) -> Prepared:
    x = np.random.default_rng(seed).uniform(-1, 1, (n_slices, *size)).astype(np.float32)
    if poison:
        x[0, 0, 0] = POISON
    return Prepared(vol=None, mask=None, work=None, slices_x=x, axis=0,
                    plan=SlicePlan(x.shape, size), background=-1.0, config={}, tgt_mod="CT",
                    t_params={}, fill=-1024.0, masked=False)


def hu(x):  # the default CT window: [-1, 1] -> [-1024, 3000] HU
    return (x + 1.0) / 2.0 * (3000.0 + 1024.0) - 1024.0


def run_stream(preps, share, batch=4):
    model = fake_model()
    stream = TileStream(model, SynthOptions("mri2ct", "one-shot", batch_size=batch),
                        share=share)
    done = []
    for key, prep in enumerate(preps):
        done += stream.add(key, prep)
    done += stream.flush()
    return dict(done), model.family.batches, [k for k, _ in done]


def test_shared_batches_fill_short_tails_and_keep_every_volume_exact():
    counts = (5, 7, 3, 6)
    preps = [prepared(n, seed=n) for n in counts]
    shared, shared_batches, order = run_stream(preps, share=True)
    alone, alone_batches, _ = run_stream(preps, share=False)
    assert order == [0, 1, 2, 3]
    assert shared_batches == [4, 4, 4, 4, 4, 1]  # 21 tiles: ceil(21 / 4) = 6 calls
    assert alone_batches == [4, 1, 4, 3, 3, 4, 2]  # sum ceil(t / 4) = 7 calls
    assert len(shared_batches) == math.ceil(sum(counts) / 4)
    for key, prep in enumerate(preps):
        out = shared[key]
        assert np.array_equal(out.total, alone[key].total)
        assert np.array_equal(out.weights, alone[key].weights)
        np.testing.assert_allclose(out.total / out.weights, hu(0.5 * prep.slices_x),
                                   rtol=0, atol=1e-3)


def test_tiles_of_another_shape_never_join_a_batch():
    preps = [prepared(3, 0), prepared(3, 1, size=(8, 5)), prepared(3, 2, size=(8, 5))]
    _, batches, _ = run_stream(preps, share=True)
    assert batches == [3, 4, 2]  # the 6x5 tail runs alone; the 8x5 volumes share


def test_a_failing_volume_leaves_its_neighbours_exact():
    preps = [prepared(5, 0), prepared(6, 1, poison=True), prepared(3, 2)]
    shared, batches, order = run_stream(preps, share=True)
    alone, _, _ = run_stream(preps, share=False)
    assert order == [0, 1, 2]
    assert isinstance(shared[1], ValueError) and isinstance(alone[1], ValueError)
    # [a0-3] ok; [a4 b0-2] fails, retried: [a4] ok, [b0-2] fails; then c alone: [c0-2]
    assert batches == [4, 4, 1, 3, 3]
    for key in (0, 2):
        assert np.array_equal(shared[key].total, alone[key].total)
        assert np.array_equal(shared[key].weights, alone[key].weights)


def test_every_2d_model_shares_and_3d_models_do_not():
    # stochastic ones too: their noise is drawn per tile (tests/synth/test_synth_tile_noise.py)
    model = SimpleNamespace(spec=SimpleNamespace(spatial_dims="2d"), stochastic=lambda cfg: True)
    assert can_share(model)
    model.spec.spatial_dims = "3d"
    assert not can_share(model)


@pytest.fixture()
def uneven_cohort(tmp_path):
    """Volumes of 3, 5, 4 (bad file) and 7 slices: no count divides the batch of 3."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i, n in enumerate((3, 5, 4, 7)):
        write_nifti(folder / f"case{i}.nii.gz", phantom_mr((24, 24, n), seed=i), AFF)
    (folder / "case2.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    return folder


def _run(weights, src, out, **over):
    req = SynthesizeRequest(model="pix2pix", inputs=src, out=out, weights=weights,
                            progress=False, batch_size=3, **over)
    with pytest.raises(PartialFailure) as caught:  # exit 8: one case failed
        run_synthesize(req)
    return caught.value.result


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def torch_threads(request):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def assert_same_voxels(a: np.ndarray, b: np.ndarray, threads: int) -> None:
    """Bitwise on one thread. With several, the CPU convolution may pick another algorithm
    for another batch size: float32 rounding apart (1.2e-4 HU seen), never more."""
    if threads == 1:
        assert np.array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-3)


@pytest.mark.parametrize("overlap", [True, False])
def test_cohort_outputs_identical_with_and_without_shared_batches(tmp_path, uneven_cohort,
                                                                  p2p_weights, overlap,
                                                                  torch_threads):
    shared = _run(p2p_weights, uneven_cohort, tmp_path / "shared", overlap_io=overlap)
    alone = _run(p2p_weights, uneven_cohort, tmp_path / "alone", overlap_io=overlap,
                 share_batches=False)
    for res in (shared, alone):
        assert [c["status"] for c in res.cases] == ["ok", "ok", "failed", "ok"]
        assert res.cases[2]["exit_code"] == 3
    tiles = [c["tiles"] for c in shared.cases if c["status"] == "ok"]
    assert shared.report["speed"]["cross_volume_batches"] is True
    assert alone.report["speed"]["cross_volume_batches"] is False
    assert shared.report["speed"]["model_calls"] == math.ceil(sum(tiles) / 3)
    assert alone.report["speed"]["model_calls"] == sum(math.ceil(t / 3) for t in tiles)
    assert shared.report["speed"]["model_calls"] < alone.report["speed"]["model_calls"]
    for i in (0, 1, 3):
        a = read_volume(tmp_path / "shared" / f"case{i}_sct.nii.gz")
        b = read_volume(tmp_path / "alone" / f"case{i}_sct.nii.gz")
        assert np.allclose(a.affine, b.affine)
        assert_same_voxels(a.array, b.array, torch_threads)
    assert not (tmp_path / "shared" / "case2_sct.nii.gz").exists()


def test_stochastic_runs_share_batches_and_keep_their_noise(tmp_path, uneven_cohort,
                                                           p2p_weights, torch_threads):
    # --samples 2: pix2pix's test-time dropout draws its masks per tile (diffusion.noise)
    shared = _run(p2p_weights, uneven_cohort, tmp_path / "shared", samples=2)
    alone = _run(p2p_weights, uneven_cohort, tmp_path / "alone", samples=2,
                 share_batches=False)
    tiles = [c["tiles"] for c in shared.cases if c["status"] == "ok"]
    assert shared.report["speed"]["cross_volume_batches"] is True
    assert shared.report["speed"]["model_calls"] == math.ceil(sum(tiles) / 3)
    assert alone.report["speed"]["model_calls"] == sum(math.ceil(t / 3) for t in tiles)
    for i in (0, 1, 3):
        a = read_volume(tmp_path / "shared" / f"case{i}_sct.nii.gz")
        b = read_volume(tmp_path / "alone" / f"case{i}_sct.nii.gz")
        assert_same_voxels(a.array, b.array, torch_threads)


def three_volumes(tmp_path):
    """A folder of three phantom MRs of 3, 5 and 7 slices."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i, n in enumerate((3, 5, 7)):
        write_nifti(folder / f"case{i}.nii.gz", phantom_mr((24, 24, n), seed=i), AFF)
    return folder


def failing_translate(monkeypatch, fail_at: set[int], error: BaseException) -> list[int]:
    """Make pix2pix's translate raise ``error`` on the calls numbered ``fail_at`` (from 1);
    returns the list that records every call's batch size."""
    from medxlate.models.registry import get_spec

    cls = type(get_spec("pix2pix").load_entry())
    real, calls = cls.translate, []

    def translate(self, nets, source, **kwargs):
        calls.append(source.shape[0])
        if len(calls) in fail_at:
            raise error
        return real(self, nets, source, **kwargs)

    monkeypatch.setattr(cls, "translate", translate)
    return calls


def test_ctrl_c_inside_a_shared_batch(tmp_path, p2p_weights, monkeypatch):
    """Volumes of 3, 5, 7 slices at batch 3 make the batches [a0-2] [b0-2] [b3-4 c0] ...;
    an interrupt in the third call loses b's last tiles and c's first: a is written, b and c
    are recorded as interrupted, and nothing of b or c is on disk."""
    folder = three_volumes(tmp_path)
    calls = failing_translate(monkeypatch, {3}, KeyboardInterrupt)
    out = tmp_path / "out"
    req = SynthesizeRequest(model="pix2pix", inputs=folder, out=out, weights=p2p_weights,
                            progress=False, batch_size=3)
    with pytest.raises(KeyboardInterrupt) as caught:
        run_synthesize(req)
    assert calls == [3, 3, 3]
    cases = caught.value.result.cases
    assert [(c["id"], c["status"]) for c in cases] == [
        ("case0", "ok"), ("case1", "failed"), ("case2", "failed")]
    assert cases[1]["error"] == cases[2]["error"] == "interrupted"
    assert sorted(p.name for p in out.iterdir()) == ["case0_sct.nii.gz"]


def test_a_model_error_in_a_shared_batch_stays_with_its_case(tmp_path, p2p_weights,
                                                              monkeypatch, torch_threads):
    """Volumes of 3, 5, 7 slices at batch 3: calls [a0-2] [b0-2] [b3-4 c0], retried alone as
    [b3-4] [c0], then [c1-3] [c4-6]. Calls 3 and 4 fail (the mixed batch and b's tiles
    alone): b fails with exit code 1 and the run exits 8; a and c equal a clean per-volume run
    voxel for voxel."""
    folder = three_volumes(tmp_path)
    clean = _run_clean(p2p_weights, folder, tmp_path / "clean")
    calls = failing_translate(monkeypatch, {3, 4}, RuntimeError("device fault"))
    out = tmp_path / "out"
    req = SynthesizeRequest(model="pix2pix", inputs=folder, out=out, weights=p2p_weights,
                            progress=False, batch_size=3)
    with pytest.raises(PartialFailure) as caught:
        run_synthesize(req)
    assert caught.value.exit_code == 8
    assert calls == [3, 3, 3, 2, 1, 3, 3]
    cases = caught.value.result.cases
    assert [c["status"] for c in cases] == ["ok", "failed", "ok"]
    assert cases[1]["exit_code"] == 1 and "device fault" in cases[1]["error"]
    assert sorted(p.name for p in out.iterdir()) == ["case0_sct.nii.gz", "case2_sct.nii.gz"]
    for i in (0, 2):
        a = read_volume(out / f"case{i}_sct.nii.gz").array
        assert_same_voxels(a, clean[i], torch_threads)


def _run_clean(weights, folder, out) -> dict[int, np.ndarray]:
    req = SynthesizeRequest(model="pix2pix", inputs=folder, out=out, weights=weights,
                            progress=False, batch_size=3, share_batches=False)
    run_synthesize(req)
    return {i: read_volume(out / f"case{i}_sct.nii.gz").array for i in range(3)}
