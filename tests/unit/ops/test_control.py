"""The supervisor's state-directory protocol: the lock, desired.json and status.json, and scale requests."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tickcast.ops.control import (
    STATUS_FILE,
    SupervisorAlreadyRunning,
    SupervisorNotRunning,
    hold_state_dir,
    read_desired,
    read_status,
    request_scale,
    supervisor_running,
    write_desired,
    write_json_atomic,
)


def test_requests_need_a_running_supervisor(tmp_path: Path) -> None:
    assert not supervisor_running(tmp_path)
    with pytest.raises(SupervisorNotRunning, match="tickcast supervise --state-dir"):
        request_scale(tmp_path, 2)


def test_a_held_state_dir_takes_requests_and_refuses_a_second_supervisor(tmp_path: Path) -> None:
    with hold_state_dir(tmp_path):
        assert supervisor_running(tmp_path)
        with (
            pytest.raises(SupervisorAlreadyRunning, match="another supervisor runs on"),
            hold_state_dir(tmp_path, 0.1),
        ):
            pass
        with pytest.raises(TimeoutError, match="2 workers were not running and ready within 0s; last: no status"):
            request_scale(tmp_path, 2, timeout_s=0.2, poll_s=0.05)
        assert read_desired(tmp_path) is not None and read_desired(tmp_path)[0] == 2  # type: ignore[index]
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(InterruptedError, match="stopped waiting for 3 workers"):
            request_scale(tmp_path, 3, timeout_s=30, cancel=cancel)
    assert not supervisor_running(tmp_path), "the lock outlived its holder"


def test_desired_and_status_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="negative"):
        write_desired(tmp_path, -1)
    request_id = write_desired(tmp_path, 4)
    assert read_desired(tmp_path) == (4, request_id)
    (tmp_path / "desired.json").write_text('{"workers": "four"}')
    assert read_desired(tmp_path) is None
    (tmp_path / STATUS_FILE).write_text("{half a file")
    assert read_status(tmp_path) is None
    write_json_atomic(tmp_path / STATUS_FILE, {"pid": 1})
    assert read_status(tmp_path) is None, "a status without its fields is no status"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["desired.json", STATUS_FILE], "temporary files left"
