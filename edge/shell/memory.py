"""Shell: glibc malloc settings for a long-running daemon that handles video frames.

A 1080p BGR frame is 6 MB. glibc serves such blocks with ``mmap`` and returns them on
``free``, but after the first one is freed it raises its mmap threshold to that size
(the "dynamic threshold"), so later frames come from the heap, where freed space is
kept and RSS only grows; each thread that allocates also gets its own 64 MB arena.
Fixing the threshold at 256 KiB and allowing two arenas keeps the daemon's RSS close to
what it really uses (measured: ``docs/benchmarks.md``, "Daemon memory"). Outside glibc
(musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 256 * 1024
ARENA_MAX = 2


def tune_malloc() -> bool:
    """Apply the settings above; True if glibc accepted them."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_ARENA_MAX, ARENA_MAX)
    )
    if not ok:
        logger.info("malloc tuning not applied (not glibc?)")
    return ok
