"""Process-wide tuning of a small shared server, applied by one explicit call at start-up.

Nothing here runs on import: `streamlit_app.py` calls `tune_server()` once, before any training
thread or compile. Hosted demos get 0.7-2.7 GB of RAM and a couple of busy cores.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

# Training threads and script runs take the GIL from the server's event loop, which answers
# health checks and websockets. A shorter switch interval (Python's default: 5 ms) hands it back
# sooner (the load test's worst health latency is the figure to watch).
SWITCH_INTERVAL_SECONDS = 0.001

# glibc mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


@functools.cache
def limit_malloc_arenas(count: int = 2) -> bool:
    """Make glibc hand freed memory back: few arenas, big blocks mmapped; True if accepted.

    glibc gives busy threads arenas of their own and, once big blocks have been freed, raises
    its mmap threshold so later big blocks stay in those arenas, rarely returned. XLA's compiler
    threads and the training threads strand memory that way; a fixed 128 kB mmap threshold
    and two arenas keep it (benchmark M1, a run on every page; the README says by how much).
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


def tune_server() -> None:
    """Everything the server process needs, once: a short GIL switch interval and few glibc
    malloc arenas. Safe to call on every rerun (the second call changes nothing)."""
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    limit_malloc_arenas()
