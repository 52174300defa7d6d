"""Cohort I/O overlapped with the model: a reader thread ahead, a writer thread behind.

While the model translates case i, :class:`Prefetcher` reads case i+1 and prepares it
(body mask, resampling to the training spacing, normalisation, slice plan:
``synth.volume.prepare_volume``) and :class:`Writer` finishes case i-1 (blending, resampling
back onto the input grid: ``finish_volume``) and writes it. Both queues are bounded (a few
volumes in memory at most). Results are identical to the sequential path: the model runs
the cases in the same order with the same per-case seeds on the calling thread; only the
work before and after the model moves. Errors stay per case: a read error is raised when its case is
taken (so the run records it for that case and goes on), a write error is returned with its
case's key. Outputs are still atomic (the writers write a temporary name, then rename).

Example:
    >>> with Prefetcher([1, 2, 3], lambda x: x * 10) as ahead:
    ...     [ahead.take() for _ in range(3)]
    [10, 20, 30]
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any, Self

_DONE = object()


class Prefetcher:
    """Apply ``read`` to ``items`` in order on a thread, at most ``depth`` results ahead.

    :meth:`take` returns the next result, or raises the exception its ``read`` raised.
    """

    def __init__(self, items: Iterable[Any], read: Callable[[Any], Any], depth: int = 2):
        self._items = list(items)
        self._read = read
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="medxlate-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for item in self._items:
            if self._stop.is_set():
                return
            try:
                result = (True, self._read(item))
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, per item
                result = (False, exc)
            self._put(result)
        self._put((True, _DONE))

    def _put(self, result) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(result, timeout=0.1)
                return
            except queue.Full:
                continue

    def take(self) -> Any:
        ok, value = self._queue.get()
        if value is _DONE:
            raise StopIteration("no more items")
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """Stop reading ahead (the item being read is finished and dropped)."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Writer:
    """Run write jobs in order on one thread; at most ``depth`` wait in the queue.

    ``submit(key, job)`` blocks while the queue is full. :meth:`poll` returns the
    ``(key, exception or None)`` of jobs finished since the last call; :meth:`finish` waits
    for every job and returns the rest.
    """

    def __init__(self, depth: int = 2):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._done: list[tuple[Any, BaseException | None]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="medxlate-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            key, job = item
            try:
                job()
                error = None
            except BaseException as exc:  # noqa: BLE001 - reported with its case
                error = exc
            with self._lock:
                self._done.append((key, error))

    def submit(self, key: Any, job: Callable[[], Any]) -> None:
        self._queue.put((key, job))

    def poll(self) -> list[tuple[Any, BaseException | None]]:
        with self._lock:
            done, self._done = self._done, []
        return done

    def finish(self) -> list[tuple[Any, BaseException | None]]:
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()
        return self.poll()
