"""Keeping a worker's RSS at what it holds: fewer malloc arenas, and freed pages given back to the OS.

Measured in the soak (``bench/memory_growth.py``): with a steady feed *and* repeated rebalances, a
worker's RSS grew ~5 MB/min while its live memory did not (malloc's in-use bytes and the gc object
count stayed flat); the growth was memory freed after each restore and catch-up burst and kept by
glibc's malloc, spread over the arenas of the many threads involved (librdkafka's, the executor's).
Neither the feed alone nor rebalances without a feed grew it. Two remedies, used together:

* :func:`limit_malloc_arenas`: at most two malloc arenas (glibc's default is 8 per core). A worker
  sets it first thing (``TICKCAST_MALLOC_ARENAS``), before librdkafka starts its threads, so a worker
  started by hand gets it too; :data:`ALLOCATOR_ENV` (``MALLOC_ARENA_MAX``, read by glibc at process
  start) does the same for the processes :class:`~tickcast.ops.workers.WorkerPool` and the Dockerfile
  start. Alone: ~5 -> ~1.7 MB/min.
* :func:`release_free_memory`: ``malloc_trim(0)``, which returns every whole free page of every
  arena; the worker calls it on a timer. Together with the above: ~1 MB/min, most of it transient
  peaks. Alone it hardly helps (~4.3 MB/min): with many arenas, freed memory rarely leaves whole pages.

Elsewhere than glibc (musl, macOS) both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

#: Environment for a worker process: at most two malloc arenas (glibc's default is 8 per core).
ALLOCATOR_ENV: dict[str, str] = {"MALLOC_ARENA_MAX": "2"}


#: glibc's mallopt parameter number for the arena limit (``M_ARENA_MAX`` in malloc.h).
_M_ARENA_MAX = -8


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    return None if name is None else ctypes.CDLL(name)


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas at ``arenas`` for the threads that allocate from now on; False where not possible.

    A thread is given its arena at its first allocation, so call this before starting threads
    (librdkafka starts several per client).

    >>> isinstance(limit_malloc_arenas(2), bool)
    True
    """
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))


@cache
def _malloc_trim() -> ctypes._NamedFuncPointer | None:
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:  # not glibc
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
