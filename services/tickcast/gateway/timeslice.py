"""Ask Linux's EEVDF scheduler for a shorter time slice, so the gateway runs sooner when a request wakes it.

On a busy machine a GET's latency is mostly the gateway's event loop waiting for a CPU: it wakes for
a request while other runnable tasks (the broker, the workers) are mid-slice. Since Linux 6.12 a task of the
normal policy may ask for its own slice (``sched_setattr`` with ``sched_runtime``, 0.1-100 ms; the default is
0.7 ms times 1 + log2(CPUs)). A shorter slice gives a waking task an earlier virtual deadline, so it preempts
sooner; it does not raise its share of the CPU (that is the nice value or the cgroup's weight), only
how soon it gets its turn. Off by default: it is a deployment choice, and measured (see the README).

Python has no binding for ``sched_setattr``, so the syscall is made through ctypes. The slice is set for the
calling thread; threads it starts afterwards inherit it (checked with :func:`thread_slice_ns` on 6.18).
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

#: ``struct sched_attr`` (its first version, 56 bytes): size, policy, flags, nice, priority, runtime,
#: deadline, period, util_min, util_max.
_SCHED_ATTR = struct.Struct("IIQiIQQQII")
#: Syscall numbers of sched_setattr and sched_getattr, by machine.
_SYSCALLS = {"x86_64": (314, 315), "aarch64": (274, 275)}
_SCHED_OTHER = 0
#: The kernel's bounds for a custom slice (it clamps to them).
MIN_SLICE_US, MAX_SLICE_US = 100, 100_000


class SliceUnavailable(OSError):
    """The kernel or the machine cannot set a custom slice; says why."""


def request_slice(slice_us: int) -> int:
    """Ask for a ``slice_us`` time slice for the calling thread; the slice the kernel then reports (ns).

    Raises :class:`SliceUnavailable` on another OS or machine, or if the kernel refuses; a kernel before 6.12
    accepts the call but keeps its own slice, and then reports 0.

    >>> request_slice(50)
    Traceback (most recent call last):
    ...
    ValueError: a slice is 100-100000 us, not 50
    """
    if not MIN_SLICE_US <= slice_us <= MAX_SLICE_US:
        raise ValueError(f"a slice is {MIN_SLICE_US}-{MAX_SLICE_US} us, not {slice_us}")
    set_call, _ = _syscalls()
    nice = os.getpriority(os.PRIO_PROCESS, 0)  # sched_setattr sets the nice value too: keep the current one
    attr = ctypes.create_string_buffer(
        _SCHED_ATTR.pack(_SCHED_ATTR.size, _SCHED_OTHER, 0, nice, 0, slice_us * 1000, 0, 0, 0, 0), _SCHED_ATTR.size
    )
    if _libc().syscall(set_call, 0, attr, 0) != 0:
        errno = ctypes.get_errno()
        raise SliceUnavailable(errno, f"sched_setattr refused a {slice_us} us slice: {os.strerror(errno)}")
    return thread_slice_ns()


def thread_slice_ns() -> int:
    """The calling thread's time slice (ns), as ``sched_getattr`` reports it (Linux >= 6.12; 0 before).

    >>> import sys
    >>> sys.platform != "linux" or platform.machine() not in _SYSCALLS or thread_slice_ns() >= 0
    True
    """
    _, get_call = _syscalls()
    attr = ctypes.create_string_buffer(_SCHED_ATTR.size)
    if _libc().syscall(get_call, 0, attr, _SCHED_ATTR.size, 0) != 0:
        errno = ctypes.get_errno()
        raise SliceUnavailable(errno, f"sched_getattr failed: {os.strerror(errno)}")
    runtime_ns: int = _SCHED_ATTR.unpack(attr.raw)[5]
    return runtime_ns


def _syscalls() -> tuple[int, int]:
    calls = _SYSCALLS.get(platform.machine())
    if os.name != "posix" or platform.system() != "Linux" or calls is None:
        raise SliceUnavailable(0, f"no sched_setattr on {platform.system()} {platform.machine()}")
    return calls


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)
