"""tickcast.common.memory: freed pages go back to the operating system, and the malloc arena cap holds."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tickcast.common.memory import _libc, _malloc_trim

#: In a fresh interpreter: a thread allocates ~60 MB in 4 KB blocks and frees all but every 50th (as a restore's
#: buffers leave a few survivors behind), then prints RSS before and after release_free_memory(), in MB.
BURST = """
import os, threading
from tickcast.common.memory import release_free_memory
from tickcast.testing.faults import resident_bytes

kept = []
def burst():
    blocks = [bytes(4096) for _ in range(15_000)]
    kept.extend(blocks[::50])
    blocks.clear()
thread = threading.Thread(target=burst)
thread.start()
thread.join()
before = resident_bytes(os.getpid())
release_free_memory()
print(before / 1e6, resident_bytes(os.getpid()) / 1e6)
"""


@pytest.mark.skipif(_malloc_trim() is None, reason="not glibc: nothing to trim")
def test_memory_freed_in_another_thread_is_returned_to_the_operating_system() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BURST], capture_output=True, text=True, timeout=60, env={"MALLOC_ARENA_MAX": "8"}
    )
    assert done.returncode == 0, done.stderr
    before, after = map(float, done.stdout.split())
    assert before - after > 30, (
        f"RSS {before:.1f} MB before the release, {after:.1f} MB after: less than 30 MB returned"
    )


#: In a fresh interpreter with glibc's default arena limit, optionally capped at 2 by limit_malloc_arenas(): eight
#: threads allocate at once, then glibc's malloc_stats() writes one "Arena N:" block per arena to stderr.
ARENAS = """
import ctypes, sys, threading
from tickcast.common.memory import _libc, limit_malloc_arenas
if sys.argv[1] == "capped":
    limit_malloc_arenas(2)
start = threading.Barrier(8)
kept = []
def allocate():
    start.wait()
    kept.append([bytearray(100_000) for _ in range(20)])
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
_libc().malloc_stats()
"""


def _arenas_used(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", ARENAS, mode],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": ":".join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


@pytest.mark.skipif(getattr(_libc(), "malloc_stats", None) is None, reason="not glibc: no arenas to cap")
def test_limit_malloc_arenas_caps_the_arenas_new_threads_get() -> None:
    uncapped = _arenas_used("default")
    assert uncapped > 2, f"without a cap, 8 allocating threads used only {uncapped} arenas: the test proves nothing"
    capped = _arenas_used("capped")
    assert capped <= 2, f"capped at 2, 8 allocating threads used {capped} arenas"
