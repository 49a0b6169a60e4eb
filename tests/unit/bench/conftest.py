"""``bench`` is a folder of the repository, not an installed package: its tests import it from the root.

``make test`` collects ``bench/`` too, which happened to make it importable; a run of these tests alone
(``pytest tests/unit/bench``) needs the root on the path itself.
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[3])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
