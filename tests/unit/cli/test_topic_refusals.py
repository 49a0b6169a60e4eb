"""A cluster that refuses to create a topic stops a command with one line, not a traceback."""

from __future__ import annotations

import pytest
import typer

from tickcast.cli.common import user_errors
from tickcast.common.kafka import TopicRefused


def test_a_refused_topic_is_a_user_error_with_exit_code_1(capsys: pytest.CaptureFixture[str]) -> None:
    # `tickcast worker` creates its snapshots topic at start; on Apache Kafka without the Create ACL that is refused.
    with pytest.raises(typer.Exit) as caught, user_errors():
        raise TopicRefused("Kafka refused to create topic 'g-snapshots' (...): TOPIC_AUTHORIZATION_FAILED")
    assert caught.value.exit_code == 1
    assert "TOPIC_AUTHORIZATION_FAILED" in capsys.readouterr().err
