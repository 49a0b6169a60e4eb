"""Test and benchmark harness shared by ``tests/`` and ``bench/``: no test-framework imports here.

A tool package like ``demo`` and ``cli``: it composes the services (real worker processes on a real broker),
so it may import any of them; no service imports it. Failures are AssertionError or TimeoutError whose
message says what did not happen, with the workers' logs.

- :mod:`~tickcast.testing.pipeline`: :class:`Pipeline` (private topics, group and workers of one run),
  ``wait_for_assignment``, the session timeout every run uses.
- :mod:`~tickcast.testing.stats`: a worker's ``/stats``, and waiting until partitions are owned exactly once.
- :mod:`~tickcast.testing.reading`: reading predictions until an expected count arrived.
- :mod:`~tickcast.testing.faults`: faults injected on purpose (SIGSTOP/SIGCONT, kill -9, a worker in its own
  network namespace whose link can be cut), each undone on the way out.
- :mod:`~tickcast.testing.waiting`: polling with a deadline; :mod:`~tickcast.testing.environment`: the
  environment children start from; :mod:`~tickcast.testing.data`: where the real market data is.
"""
