"""The peers' own venv (``.venv-peers``, ``make peers-venv``): where the peer processes' interpreter lives.

Quix Streams pins confluent-kafka and pydantic below the versions tickcast installs, so the peers do not share
the project's venv: the venv that runs ``make test`` stays what ``make install`` made, benched or not. The
peers' venv has tickcast installed too (editable, from this checkout), since view 1 calls its handler.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.core import BenchError
from tickcast.testing.data import REPO_ROOT

#: Made by ``make peers-venv`` (and so by ``make bench``); the Makefile's ``PEERS_VENV`` names it too.
PEERS_VENV = REPO_ROOT / ".venv-peers"
#: Distributions whose versions a peers result records: the peers, and what Quix Streams holds back.
VERSIONS = ("quixstreams", "bytewax", "faust-streaming", "confluent-kafka", "pydantic")

# Run by the peers' interpreter: which of the packages it can import, where its tickcast comes from, versions.
_PROBE = """
import importlib.util, json, sys
from importlib import metadata
packages, distributions = json.loads(sys.argv[1]), json.loads(sys.argv[2])
def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
tickcast = importlib.util.find_spec("tickcast")
print(json.dumps({
    "found": [p for p in packages if importlib.util.find_spec(p) is not None],
    "tickcast": tickcast.origin if tickcast else None,
    "versions": {d: version(d) for d in distributions},
}))
"""


def python(venv: Path | None = None) -> Path:
    """The interpreter every peer process runs on.

    >>> python(Path("/repo/.venv-peers"))
    PosixPath('/repo/.venv-peers/bin/python')
    """
    return (venv or PEERS_VENV) / "bin" / "python"


def missing_message(venv: Path) -> str:
    """What the scenario says, on one line, when the peers' venv is not there.

    >>> missing_message(Path("/repo/.venv-peers"))
    'the peers venv /repo/.venv-peers is missing: `make peers-venv` makes it (`make bench` does too)'
    """
    return f"the peers venv {venv} is missing: `make peers-venv` makes it (`make bench` does too)"


def probe(packages: Iterable[str], venv: Path | None = None) -> dict[str, Any]:
    """Ask the peers' interpreter which of ``packages`` it can import, and the versions of :data:`VERSIONS`.

    Raises :class:`BenchError` (one line) if the venv is missing, or if its tickcast is not this checkout's:
    view 1's peers would then run another tickcast's handler than the worker they are compared with.
    """
    venv = venv or PEERS_VENV
    interpreter = python(venv)
    if not interpreter.exists():
        raise BenchError(missing_message(venv))
    argv = [str(interpreter), "-c", _PROBE, json.dumps(sorted(packages)), json.dumps(VERSIONS)]
    # The peers venv's own interpreter, fixed argv, no shell.
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)  # nosec B603
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"the peers venv {venv} does not run ({last}): {_remake(venv)}")
    found: dict[str, Any] = json.loads(done.stdout)
    ours = REPO_ROOT / "services" / "tickcast"
    if found["tickcast"] is None or Path(found["tickcast"]).resolve().parent != ours.resolve():
        raise BenchError(f"the peers venv {venv} has tickcast from {found['tickcast']}, not {ours}: {_remake(venv)}")
    return found


def _remake(venv: Path) -> str:
    return f"`rm -rf {venv} && make peers-venv` remakes it"
