"""Which symbols a worker forgets when it holds too many, and which of them it forgets for good.

Every symbol costs a worker ~5-30 KB of state (features, a River model per horizon, pending labels),
so a flood of unique symbols would exhaust its memory, then its successor's. A worker keeps at most
``TICKCAST_MAX_SYMBOLS``; past that, the least recently seen symbols are evicted down to
:data:`LOW_WATER` of the cap, so eviction runs once per burst rather than once per new symbol.

An evicted symbol leaves a final snapshot, so the partition's next owner can still restore it;
if it comes back to this worker it starts fresh (warming up again). One idle for longer than
``TICKCAST_SYMBOL_TTL_S`` is evicted *for good*: a tombstone (null value for its key) replaces
its snapshot, so no restore loads it again and compaction removes it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from tickcast.predictor.forecaster import SymbolState

#: Eviction frees room down to this share of the cap.
LOW_WATER = 0.9


@dataclass(frozen=True, slots=True)
class EvictionPolicy:
    """The per-worker symbol cap and the idle time after which an evicted symbol is forgotten for good.

    >>> EvictionPolicy(max_symbols=100, ttl_s=60.0).keep_after_eviction
    90
    """

    max_symbols: int
    ttl_s: float

    @property
    def keep_after_eviction(self) -> int:
        return max(1, int(self.max_symbols * LOW_WATER))

    def over(self, symbols: int) -> bool:
        return symbols > self.max_symbols

    def victims(self, states: Mapping[str, SymbolState]) -> list[str]:
        """The least recently seen symbols to evict (``states`` is kept in order of last tick, oldest first).

        >>> from tickcast.predictor.models import model_spec
        >>> states = {name: SymbolState(model=model_spec("persistence").build()) for name in "ABCDE"}
        >>> EvictionPolicy(max_symbols=4, ttl_s=60.0).victims(states)
        ['A', 'B']
        >>> EvictionPolicy(max_symbols=5, ttl_s=60.0).victims(states)
        []
        """
        if not self.over(len(states)):
            return []
        excess = len(states) - self.keep_after_eviction
        return list(itertools.islice(states, excess))

    def for_good(self, state: SymbolState, now_us: int) -> bool:
        """True when the symbol's last tick was processed more than ``ttl_s`` ago (by this worker's clock).

        >>> from tickcast.predictor.models import model_spec
        >>> state = SymbolState(model=model_spec("persistence").build())
        >>> EvictionPolicy(10, ttl_s=60.0).for_good(state, now_us=0)  # never predicted: nothing to keep
        True
        """
        if state.last_prediction is None:
            return True
        return now_us - state.last_prediction.predicted_at > self.ttl_s * 1e6
