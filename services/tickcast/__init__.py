"""tickcast: streaming, per-symbol online price prediction on Kafka (Faust workers, River models)."""

from __future__ import annotations

__version__ = "0.1.0"
