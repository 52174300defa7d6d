"""What one case of a cohort cost, when its stages run on different threads.

With read-ahead and write-behind (:mod:`medxlate.synth.prefetch`) and batches shared across
volumes (:mod:`medxlate.synth.stream`), the time from a case's first step to its last
includes time spent queued behind other cases. A :class:`CaseClock` adds up the case's own
work instead: reading and preparing its input, its share of the model calls (a batch's time
split by the tiles each volume had in it) and finishing and writing its outputs. The rest of
the span is ``queue_seconds``. Each stage runs on one thread at a time (reader, model,
writer), so the cases' ``seconds`` add up to at most the run's wall time times three.

Example:
    >>> clock = CaseClock()
    >>> clock.timed(sum, [1, 2])
    3
    >>> sorted(clock.record())
    ['queue_seconds', 'seconds']
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

#: The threads a cohort's stages run on (reader, model, writer): the cases' seconds add up
#: to at most the wall time times this.
STAGE_THREADS = 3


@dataclass
class CaseClock:
    """The work seconds of one case and when its first step started (``perf_counter``)."""

    started: float = field(default_factory=time.perf_counter)
    work: float = 0.0

    def add(self, seconds: float) -> None:
        self.work += float(seconds)

    def timed(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)``, its duration added to the work (also when it raises)."""
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.add(time.perf_counter() - t0)

    def record(self) -> dict[str, Any]:
        """``seconds`` (the case's own work) and ``queue_seconds`` (the rest of its span)."""
        span = time.perf_counter() - self.started
        return {"seconds": round(self.work, 3),
                "queue_seconds": round(max(0.0, span - self.work), 3)}


def timed_call(fn, *args, **kwargs) -> tuple[Any, float, float]:
    """``(fn(*args, **kwargs), start, seconds)``; an exception gets ``started`` and
    ``seconds`` attributes, so a reader thread's failure still reports its time."""
    t0 = time.perf_counter()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        exc.started, exc.seconds = t0, time.perf_counter() - t0
        raise
    return result, t0, time.perf_counter() - t0
