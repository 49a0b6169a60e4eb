"""Peers: other stream processors doing a worker's job on the same backlog and broker (``--only peers``).

View 1, framework overhead: each peer calls tickcast's own :class:`~tickcast.predictor.runtime.TickHandler`
per record, so the difference to the plain loop is the framework. Installed only for the bench
(``pip install -e '.[bench-peers]'``; ``make bench`` does it); the scenario skips a peer whose package is missing.
"""
