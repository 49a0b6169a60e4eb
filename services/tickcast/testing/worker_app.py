"""The worker's Faust app built in a test's own process, with its output producer closed afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import faust

from tickcast.predictor import app as worker_module
from tickcast.predictor.output import OutputProducer
from tickcast.predictor.runtime import TickHandler
from tickcast.predictor.settings import PredictorSettings


@contextmanager
def built_worker_app(settings: PredictorSettings) -> Iterator[tuple[faust.App, TickHandler]]:
    """:func:`tickcast.predictor.app.create_app`, closing the output producers it made on the way out.

    Unclosed, each producer lives as long as the app's reference cycles do, and librdkafka goes on
    reconnecting to an unreachable test broker, logging every refused connection on stderr.

    >>> from tickcast.predictor.snapshot_keys import new_key
    >>> settings = PredictorSettings(bootstrap_servers="127.0.0.1:1", web_port=16090, snapshot_key=new_key())
    >>> with built_worker_app(settings) as (app, handler):
    ...     type(app).__name__
    'TunedApp'
    """
    opened: list[OutputProducer] = []

    class RecordedOutput(OutputProducer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            opened.append(self)

    with mock.patch.object(worker_module, "OutputProducer", RecordedOutput):
        built = worker_module.create_app(settings)
    try:
        yield built
    finally:
        for output in opened:
            output.close(timeout_s=0)
