"""The server's malloc tuning is accepted by the C library it runs on."""

import platform

import pytest

from engine.app.tuning import limit_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt tuning is glibc's")
def test_glibc_accepts_the_arena_cap_and_the_mmap_threshold() -> None:
    assert limit_malloc_arenas() is True
