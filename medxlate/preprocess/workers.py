"""Process subjects in parallel (``--workers N``) with progress messages from the workers.

Workers are spawned processes (not forked: SimpleITK and BLAS thread pools do not survive a
fork reliably); each gets ``cores // N`` threads for SimpleITK and reports its current step
through a manager queue that the parent turns into progress updates.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path


def _init(threads: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def _work(s, cfg: dict, paired: bool, out: Path, messages) -> dict:
    # imported in the worker, after _init has set its thread counts
    from medxlate.preprocess.subject_run import run_one

    return run_one(s, cfg, paired, out, lambda text: messages.put((s.id, text)))


def _drain(messages, progress) -> None:
    while True:
        try:
            sid, text = messages.get_nowait()
        except queue_module.Empty:
            return
        if progress is not None:
            progress.step(sid, text)


def run_pool(todo, cfg: dict, paired: bool, out: Path, workers: int, result, progress,
             failure) -> None:
    """Run ``todo`` on ``workers`` processes, appending to ``result.records``/``failed``."""
    context = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // workers)
    with context.Manager() as manager:
        messages = manager.Queue()
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init,
                                 initargs=(threads,)) as pool:
            futures = {pool.submit(_work, s, cfg, paired, out, messages): s for s in todo}
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                _drain(messages, progress)
                for future in finished:
                    s = futures[future]
                    try:
                        result.records.append(future.result())
                        ok = True
                    except Exception as exc:  # noqa: BLE001 - reported per subject
                        result.failed.append(failure(s, exc))
                        ok = False
                    if progress is not None:
                        progress.done(s.id, ok)
        _drain(messages, progress)
