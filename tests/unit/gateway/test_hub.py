"""The hub's bookkeeping on its own: resume positions, the client limit, and the symbol index."""

from __future__ import annotations

from tickcast.gateway.cache import Published
from tickcast.gateway.hub import Hub, Subscription
from tickcast.gateway.metrics import GatewayMetrics


def event(offset: int, symbol: str = "A", partition: int = 0) -> Published:
    return Published(partition, offset, symbol, 0.0, 0.0, "{}")


def test_an_event_at_the_clients_position_is_not_sent_again() -> None:
    # The position is the last offset the client was given: a replay overlapping it must skip that one.
    subscription = Subscription(frozenset({"A"}), {0: 5}, capacity=4)
    assert not subscription.advance(event(5)), "the event the client already had was sent again"
    assert subscription.advance(event(6)) and subscription.positions == {0: 6}
    assert subscription.advance(event(0, partition=1)), "a partition the id does not name starts before offset 0"


def test_the_hub_is_full_at_exactly_its_limit() -> None:
    hub = Hub(GatewayMetrics(), max_clients=2)
    hub.add(Subscription(None, {}, capacity=1))
    assert not hub.full()
    hub.add(Subscription(None, {}, capacity=1))
    assert hub.full(), "a third client would be let in past max_clients=2"


def test_clients_that_come_and_go_leave_nothing_in_the_symbol_index() -> None:
    hub = Hub(GatewayMetrics(), max_clients=10)
    for n in range(100):
        subscription = Subscription(frozenset({f"S{n}", "A"}), {}, capacity=1)
        hub.add(subscription)
        hub.remove(subscription)
    assert len(hub) == 0
    assert hub._by_symbol == {}, f"{len(hub._by_symbol)} symbols still indexed with no client wanting them"
