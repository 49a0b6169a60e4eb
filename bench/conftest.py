"""pytest collects ``bench/`` for its doctests (``make test``); two peers are not importable there.

Quix Streams and Bytewax are installed only in the peers' own venv (``.venv-peers``, ``make peers-venv``), never
in the ``.venv`` that runs the tests, and the Bytewax peer builds its dataflow from the environment a bench run
gives it when it is imported.
"""

collect_ignore = ["peers/bytewax_peer.py", "peers/quix_peer.py"]
