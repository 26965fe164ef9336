"""Process-wide memory tuning for a small shared server (hosted demos get 0.7-2.7 GB)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_ARENA_MAX = -8  # glibc's mallopt parameter number for the arena cap (malloc.h)


@functools.cache
def limit_malloc_arenas(count: int = 2) -> bool:
    """Cap glibc's malloc arenas, as MALLOC_ARENA_MAX does; True if the C library accepted it.

    glibc gives busy threads their own arenas and rarely returns their memory; XLA's compiler
    threads and the training threads leave ~100 MB stranded that way (benchmark M1: 765 MB
    peak with a run on every page, 661 MB with two arenas). Elsewhere than glibc this does
    nothing. Arenas already made are kept, so call it before the first training run.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, count))
