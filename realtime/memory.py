"""glibc's malloc set for a process that only streams frames: `python -m realtime.video`, `realtime.camera`,
`realtime.bench_stream` and the Ray actors that convert videos call `settle_malloc()` first; the studio server does
not (its memory is shared by its users' jobs).

A 1080p frame's buffers are a few MB each. By default glibc gives every allocation from 128 kB up (a threshold that
adapts up to 32 MiB) its own mmap and hands it back to the kernel when freed, and the stream's stage threads each
get an arena of their own whose heaps are trimmed and unmapped as frames come and go; every new buffer then comes
back as fresh, zeroed pages: 2,000-9,000 page faults and 15-45 ms of kernel time a 1080p frame in the pipelined
stream. Kept instead (allocations up to MMAP_THRESHOLD from the heap, up to TRIM_THRESHOLD of freed memory kept at
its top, one arena for all threads), the same frames cost under 1,000 faults: bench_stream's 1080p pipelined stream
6.9-7.6 -> 7.5-8.0 fps on this project's 2-core machine, and no more resident memory (1336 against 1427 MB after 300
720p frames; docs/PERFORMANCE.md, "Cores the stream was losing"). Allocation only: the frames are the same bit for
bit.

Left alone where the user set glibc's malloc themselves (GLIBC_TUNABLES or MALLOC_*_ in the environment) and where
the C library is not glibc."""
from __future__ import annotations

import ctypes
import os
import platform
from typing import Optional

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's malloc.h
MMAP_THRESHOLD = 32 * 1024 * 1024  # bytes: allocations below come from the heap (a 1080p float32 RGB frame: 24.9 MB)
TRIM_THRESHOLD = 256 * 1024 * 1024  # bytes of freed memory kept at the heap's top
ARENA_MAX = 1  # one heap for all the stream's threads


def _glibc() -> Optional[ctypes.CDLL]:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def user_set_malloc() -> bool:
    """Whether the environment sets glibc's malloc (GLIBC_TUNABLES, or a MALLOC_*_ variable such as
    MALLOC_ARENA_MAX)."""
    return "GLIBC_TUNABLES" in os.environ or any(k.startswith("MALLOC_") and k.endswith("_") for k in os.environ)


def settle_malloc() -> bool:
    """Set glibc's malloc for streaming (this module's docstring); True when it was set, False where it is left
    alone (another C library, or the user's own settings)."""
    libc = _glibc()
    if libc is None or user_set_malloc():
        return False
    return all(libc.mallopt(param, value) == 1 for param, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_ARENA_MAX, ARENA_MAX)))
