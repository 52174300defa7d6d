"""The reference every CPU benchmark divides by: GFLOP/s of large float32 matmuls.

Imported by the benchmark scripts beside it (``sys.path`` holds this folder when a script in
it runs). ``clock`` chooses what a second is: wall time (``time.perf_counter``) for figures
timed in wall seconds, or this process's CPU time (``time.process_time``, all its threads
together) for figures timed in CPU seconds on a shared machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def matmul_gflops(sizes: tuple[int, ...] = (1024, 2048, 3072), repeats: int = 3,
                  clock: Callable[[], float] = time.perf_counter) -> float:
    """Best float32 GFLOP per ``clock`` second of n x n matmuls over ``sizes`` and
    ``repeats`` (each size warmed up once first)."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        for _ in range(repeats):
            start = clock()
            a @ b
            best = max(best, 2 * n ** 3 / max(clock() - start, 1e-9) / 1e9)
    return best
