"""release_free_memory: pages freed by a burst of allocations in another thread go back to the operating system."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tickcast.common.memory import _malloc_trim

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
