"""The gateway's request for a shorter EEVDF time slice: bounds, the syscall on Linux, a clear refusal elsewhere."""

from __future__ import annotations

import platform
import sys
import threading

import pytest

from tickcast.gateway import timeslice
from tickcast.gateway.timeslice import SliceUnavailable, request_slice, thread_slice_ns


def _custom_slices() -> bool:
    """Linux >= 6.12 on a machine whose syscall numbers we know: it reports the slice (0 before 6.12)."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "aarch64"):
        return False
    return thread_slice_ns() > 0


linux_only = pytest.mark.skipif(not _custom_slices(), reason="custom EEVDF slices are Linux >= 6.12's")


@pytest.mark.parametrize("slice_us", [0, 99, 100_001])
def test_a_slice_outside_the_kernels_bounds_is_refused_before_the_syscall(slice_us: int) -> None:
    with pytest.raises(ValueError, match="a slice is 100-100000 us"):
        request_slice(slice_us)


def test_another_machine_gets_a_reason_not_a_wrong_syscall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeslice.platform, "machine", lambda: "riscv64")
    with pytest.raises(SliceUnavailable, match=r"no sched_setattr on .* riscv64"):
        request_slice(300)


@linux_only
def test_the_thread_gets_the_slice_and_threads_it_starts_inherit_it() -> None:
    seen: dict[str, int] = {}

    def in_a_thread() -> None:
        # A thread of its own, so this test's slice never outlives it.
        seen["granted"] = request_slice(250)
        seen["now"] = thread_slice_ns()
        child = threading.Thread(target=lambda: seen.__setitem__("child", thread_slice_ns()))
        child.start()
        child.join()

    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join()
    assert seen == {"granted": 250_000, "now": 250_000, "child": 250_000}
