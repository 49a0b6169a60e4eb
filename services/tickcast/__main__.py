"""``python -m tickcast`` runs the CLI (the supervisor starts workers this way)."""

from __future__ import annotations

from tickcast.cli import main

main()
