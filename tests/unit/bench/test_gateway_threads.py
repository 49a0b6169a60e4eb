"""``bench.gateway``'s per-thread scheduler counts: CPU time and time waiting for a core, from /proc."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT))  # bench is a folder of the repository, not an installed package
    import bench.gateway_load

    return bench.gateway_load


def test_each_thread_by_name_with_the_main_thread_as_main(load: ModuleType, tmp_path: Path) -> None:
    for tid, comm, stats in (("40", "python", "9 8 7"), ("41", "rdk:main", "3 2 1"), ("42", "gone", "")):
        task = tmp_path / "40" / "task" / tid
        task.mkdir(parents=True)
        (task / "comm").write_text(comm + "\n")
        if stats:
            (task / "schedstat").write_text(stats + "\n")
    # The thread with no schedstat (it ended between listing and reading) is left out.
    assert load.thread_schedstats(40, proc=tmp_path) == {"main": (9, 8, 7), "rdk:main/41": (3, 2, 1)}


def test_this_process_has_a_main_thread_that_ran(load: ModuleType) -> None:
    found = load.thread_schedstats(os.getpid())
    if not found:
        pytest.skip("this kernel keeps no per-thread schedstat")
    cpu_ns, _, slices = found["main"]
    assert cpu_ns > 0 and slices > 0
