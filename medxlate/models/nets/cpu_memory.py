"""Keep freed memory in the process heap on glibc (CPU inference speed).

A U-Net at 256x256 allocates and frees activations of 10-130 MB many times per evaluation.
glibc serves blocks that large with mmap and returns them to the kernel on free, so every
new activation is page-faulted and zero-filled again: measured on 2 cores, an elementwise op
on a 134 MB tensor took 90 ms with fresh memory and 16 ms with reused memory. Turning off
mmap for large blocks (and trimming) makes the heap keep and reuse them. The cost is that
the process keeps its peak working set until it exits, which suits a batch CLI.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_done = False


def keep_freed_memory() -> bool:
    """Configure glibc malloc once per process; True if it applied (Linux glibc only)."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    except (OSError, AttributeError):  # musl or no mallopt
        return False
    _done = ok
    return ok
