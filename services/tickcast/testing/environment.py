"""The environment a child of a test or bench run starts from: the parent's, minus tickcast's own settings."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

from tickcast.common.processes import current_env

#: Settings a developer may have exported: tickcast's own (``TICKCAST_*``) and Faust's (``F_*``, ``FAUST_*``).
#: A run sets every one it needs, so none of them may leak in from the shell that started it.
OWN_PREFIXES = ("TICKCAST_", "F_", "FAUST_")


def base_env(parent: Mapping[str, str] | None = None) -> dict[str, str]:
    """``parent`` (this process's environment by default) without :data:`OWN_PREFIXES` variables.

    >>> base_env({"PATH": "/bin", "TICKCAST_MODEL": "ewma", "F_DATADIR": "/x", "FAUST_DEBUG": "1"})
    {'PATH': '/bin'}
    """
    # current_env() is the one place that reads os.environ: children still need PATH, HOME, proxies and
    # the like, which no settings class describes.
    source = current_env() if parent is None else parent
    return {name: value for name, value in source.items() if not name.startswith(OWN_PREFIXES)}


def run_tickcast(*args: str, env: Mapping[str, str], timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tickcast ARGS`` with :func:`base_env` plus ``env``; stdout and stderr captured as text.

    Tests run the command line as a child, as a user does: only the entry points import ``tickcast.cli``.
    """
    return subprocess.run(  # nosec B603 # argv is this interpreter running tickcast with the test's arguments
        [sys.executable, "-m", "tickcast", *args],
        env={**base_env(), **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
