"""Issue 16: cohort I/O overlapped with the model (reader thread ahead, writer behind).

Oracle: the sequential path (``overlap_io=False``, the code before this change) — the
overlapped run must give bit-identical volumes and the same per-case statuses.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from medxlate.errors import OutputError, PartialFailure
from medxlate.io.readers import read_volume
from medxlate.synth.prefetch import Prefetcher, Writer
from medxlate.synth.run import SynthesizeRequest, run_synthesize
from tests.synth.conftest import phantom_mr, write_nifti

AFF = np.diag([1.5, 1.5, 2.0, 1.0])


def test_prefetcher_keeps_order_isolates_errors_and_stays_bounded():
    started = []

    def read(x):
        started.append(x)
        if x == 2:
            raise ValueError("bad case 2")
        return x * 10

    with Prefetcher(range(6), read, depth=2) as ahead:
        assert ahead.take() == 0
        time.sleep(0.3)  # let the reader run as far ahead as the queue allows
        # taken 1, queue holds 2, one more read waits to be queued: at most 4 started
        assert len(started) <= 4
        assert ahead.take() == 10
        with pytest.raises(ValueError, match="bad case 2"):
            ahead.take()
        assert [ahead.take() for _ in range(3)] == [30, 40, 50]
        with pytest.raises(StopIteration):
            ahead.take()


def test_writer_runs_jobs_in_order_and_reports_errors_by_key():
    order, main = [], threading.get_ident()

    def job(k):
        def run():
            assert threading.get_ident() != main
            order.append(k)
            if k == "b":
                raise OutputError("disk full")
        return run

    writer = Writer(depth=1)
    for k in "abc":
        writer.submit(k, job(k))
    done = dict(writer.finish())
    assert order == ["a", "b", "c"]
    assert done["a"] is None and done["c"] is None and isinstance(done["b"], OutputError)


@pytest.fixture()
def cohort(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        write_nifti(folder / f"case{i}.nii.gz", phantom_mr((24, 24, 4), seed=i), AFF)
    return folder


def _run(weights, src, out, overlap, **over):
    req = SynthesizeRequest(model="pix2pix", inputs=src, out=out, weights=weights,
                            progress=False, overlap_io=overlap, **over)
    try:
        return run_synthesize(req)
    except PartialFailure as exc:
        return exc.result


def test_overlapped_cohort_is_identical_to_sequential(tmp_path, cohort, p2p_weights):
    (cohort / "case2.nii.gz").write_bytes(b"\x1f\x8b not really gzip")  # one bad case
    results = {}
    for overlap in (False, True):
        out = tmp_path / f"out{overlap}"
        # --samples 2: test-time dropout draws from each case's seed, so seeds must match
        res = _run(p2p_weights, cohort, out, overlap, samples=2)
        results[overlap] = res
    seq, ovl = results[False], results[True]
    assert [c["status"] for c in seq.cases] == ["ok", "ok", "failed", "ok"]
    assert [c["status"] for c in ovl.cases] == [c["status"] for c in seq.cases]
    assert ovl.cases[2]["exit_code"] == 3 and "InputError" in ovl.cases[2]["error"]
    for i in (0, 1, 3):
        a = read_volume(tmp_path / "outFalse" / f"case{i}_sct.nii.gz")
        b = read_volume(tmp_path / "outTrue" / f"case{i}_sct.nii.gz")
        assert np.array_equal(a.array, b.array) and np.allclose(a.affine, b.affine)
    assert not (tmp_path / "outTrue" / "case2_sct.nii.gz").exists()


def test_a_failed_write_fails_only_its_case(tmp_path, cohort, p2p_weights, monkeypatch):
    from medxlate.io import readers

    real = readers.write_volume

    def flaky(vol, path, *args, **kwargs):
        if "case1" in str(path):
            raise OutputError(f"cannot write {path}: disk full")
        return real(vol, path, *args, **kwargs)

    monkeypatch.setattr(readers, "write_volume", flaky)
    out = tmp_path / "out"
    res = _run(p2p_weights, cohort, out, True)
    assert [c["status"] for c in res.cases] == ["ok", "failed", "ok", "ok"]
    assert res.cases[1]["exit_code"] == 4 and "disk full" in res.cases[1]["error"]
    assert sorted(p.name for p in out.iterdir()) == [
        "case0_sct.nii.gz", "case2_sct.nii.gz", "case3_sct.nii.gz"]  # nothing half-written
