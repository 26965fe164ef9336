"""Process-wide memory tuning for a small shared server (hosted demos get 0.7-2.7 GB)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# glibc mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


@functools.cache
def limit_malloc_arenas(count: int = 2) -> bool:
    """Make glibc hand freed memory back: few arenas, big blocks mmapped; True if accepted.

    glibc gives busy threads arenas of their own and, once big blocks have been freed, raises
    its mmap threshold so later big blocks stay in those arenas, rarely returned. XLA's compiler
    threads and the training threads strand ~100 MB that way (benchmark M1, a run on every
    page: 765-787 MB peak as is, 635 MB with a fixed 128 kB mmap threshold and two arenas).
    Arenas already made are kept, so call it before the first training run. Elsewhere than
    glibc this does nothing.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    fixed_mmap = mallopt(M_MMAP_THRESHOLD, 128 * 1024)
    return bool(mallopt(M_ARENA_MAX, count)) and bool(fixed_mmap)
