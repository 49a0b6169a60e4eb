"""Peers: other stream processors doing a worker's job on the same backlog and broker (``--only peers``).

View 1, framework overhead: each peer calls tickcast's own :class:`~tickcast.predictor.runtime.TickHandler`
per record, so the difference to the plain loop is the framework. The peers run on their own venv, ``.venv-peers``
(:mod:`bench.peers.venv`; ``make peers-venv``, and ``make bench``, make it); the scenario skips a peer whose
package is missing there.
"""
