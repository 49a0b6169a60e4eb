"""Giving freed heap memory back to the operating system, so a worker's RSS follows what it holds, not its peaks.

A worker's large transient allocations (a restore reads a whole snapshots partition: librdkafka's
fetch buffers in its own threads, the records' bytes in an executor thread) are freed right away,
but glibc's malloc keeps freed memory in the arena of the thread that allocated it, and a page
with one live chunk left in it cannot be returned. Every restore of a larger partition leaves a
higher watermark behind, which the soak measured as RSS growth with constant live memory
(``bench/memory_growth.py``). Two remedies, both here:

* :data:`ALLOCATOR_ENV`: fewer malloc arenas (``MALLOC_ARENA_MAX``), so the watermarks of many
  short-lived threads collapse into a couple of arenas. Read by glibc at process start: it is set in
  the environment a worker is started with (:class:`~tickcast.ops.workers.WorkerPool`, the Dockerfile).
* :func:`release_free_memory`: ``malloc_trim(0)`` after such an allocation burst, which returns every
  whole free page of every arena.

Elsewhere than glibc (musl, macOS) both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

#: Environment for a worker process: at most two malloc arenas (glibc's default is 8 per core).
ALLOCATOR_ENV: dict[str, str] = {"MALLOC_ARENA_MAX": "2"}


@cache
def _malloc_trim() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return the allocator's free pages to the operating system; False where that is not possible (not glibc).

    Blocking for a few milliseconds on a large heap: call it off the event loop.

    >>> isinstance(release_free_memory(), bool)
    True
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
