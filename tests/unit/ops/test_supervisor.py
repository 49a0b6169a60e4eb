"""The supervisor's readiness probe of its workers."""

from __future__ import annotations

from tests.unit.ops.not_http import ssh_like_port
from tickcast.ops.supervisor import _answers


def test_a_worker_port_that_does_not_speak_http_is_not_ready() -> None:
    # free_port() hands out a port that another program may take before the worker binds it; what answers
    # there is not the worker, and the supervisor's loop must go on rather than stop every worker.
    with ssh_like_port() as port:
        assert _answers(port) is False, "a non-HTTP answer is not a ready worker"
