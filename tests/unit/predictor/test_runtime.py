"""TickHandler: one outcome per record, dead letters keep the original bytes and say why."""

from __future__ import annotations

from tickcast.common.errors import Reason
from tickcast.common.records import Lineage, Tick
from tickcast.predictor.runtime import DeadLettered, Predicted, TickHandler
from tickcast.predictor.settings import PredictorSettings

NOW_MS = 1_700_000_000_000


# Next-tick horizon: the ticks here are 1 ms apart, so a time horizon's labels would never arrive.
def handler() -> TickHandler:
    return TickHandler(PredictorSettings(bootstrap_servers="127.0.0.1:1", worker_id="unit", horizons="1t"))


def test_good_tick_becomes_a_decodable_prediction_with_lineage() -> None:
    h = handler()
    value = h.tick_codec.encode(Tick("SPY", 100.0, 1.0, NOW_MS).to_avro())
    outcome = h.handle(b"SPY", value, Lineage("ticks", 3, 42, NOW_MS))
    assert isinstance(outcome, Predicted)
    assert (outcome.symbol, outcome.key) == ("SPY", b"SPY")
    record = h.prediction_codec.decode(outcome.value)
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == ("ticks", 3, 42)
    assert record["worker"] == "unit" and record["status"] == "WARMING_UP"
    assert h.counters.predictions_out == 1 and not h.counters.dead_letters


def test_bad_tick_becomes_a_dead_letter_with_original_bytes_and_reason() -> None:
    h = handler()
    value = h.tick_codec.encode(Tick("SPY", -5.0, 1.0, NOW_MS).to_avro())
    outcome = h.handle(b"SPY", value, Lineage("ticks", 1, 7, NOW_MS))
    assert isinstance(outcome, DeadLettered)
    assert outcome.value == value and outcome.key == b"SPY"
    headers = dict(outcome.headers)
    assert headers["tickcast.reason"] == b"bad_price"
    assert b"-5.0" in headers["tickcast.message"]
    assert headers["tickcast.source.offset"] == b"7" and headers["tickcast.source.partition"] == b"1"
    assert h.counters.dead_letters == {"bad_price": 1}


class BrokenModel:
    """A model whose every call raises, as a model bug would."""

    def learn_one(self, x: object, y: object) -> None:
        raise ValueError("boom")

    def predict_one(self, x: object) -> float:
        raise ValueError("boom")


def feed_broken_model(h: TickHandler, ticks: int) -> list[Predicted | DeadLettered]:
    h.forecaster.state("IBM").model = BrokenModel()
    outcomes = []
    for i in range(ticks):
        value = h.tick_codec.encode(Tick("IBM", 100.0 + i % 3, 1.0, NOW_MS + i).to_avro())
        outcomes.append(h.handle(b"IBM", value, Lineage("ticks", 0, i, NOW_MS)))
    return outcomes


def test_a_model_failure_is_a_dead_letter_not_a_crash() -> None:
    h = handler()
    outcomes = feed_broken_model(h, 40)
    # Tick 0 has no return yet and tick 1 nothing to learn from (and the linear model is still warming
    # up, so nothing is predicted): both succeed. From tick 2 on, every tick asks the model to learn the
    # previous tick's features, and the model raises. No tick of this series is outlier-flagged.
    assert [isinstance(o, Predicted) for o in outcomes] == [True, True] + [False] * 38
    assert h.counters.dead_letters == {Reason.PROCESSING_ERROR: 38}
    assert (h.counters.ticks_in, h.counters.predictions_out, h.counters.outliers) == (40, 2, 0)
    last = outcomes[-1]
    assert isinstance(last, DeadLettered)
    assert dict(last.headers)["tickcast.message"] == b"ValueError: boom"


def test_a_failing_tick_leaves_the_symbol_state_as_it_was() -> None:
    h = handler()
    feed_broken_model(h, 40)
    state = h.forecaster.states["IBM"]
    # Only the two ticks that became predictions should count.
    assert (state.ticks_seen, state.errors_scored) == (2, 0)


def test_a_model_event_of_a_failed_tick_goes_out_with_that_tick_not_another_symbols() -> None:
    h = TickHandler(
        PredictorSettings(
            bootstrap_servers="127.0.0.1:1", worker_id="unit", horizons="1t,2t", model="persistence",
            challengers="mean-reversion",
        )
    )  # fmt: skip

    def tick(symbol: str, offset: int) -> Predicted | DeadLettered:
        value = h.tick_codec.encode(Tick(symbol, 100.0 + offset % 3, 1.0, NOW_MS + offset).to_avro())
        return h.handle(symbol.encode(), value, Lineage("ticks", 0, offset, NOW_MS))

    assert all(isinstance(tick("IBM", offset), Predicted) for offset in range(4))
    # As restored from a release whose persistence recipe had another version: this worker adopts the state on
    # IBM's next tick and demotes its champion (selection.restored). Its 2t model has a bug: that tick fails.
    state = h.forecaster.states["IBM"]
    assert state.selection is not None
    state.selection.built_under = "recipes=persistence:0,mean-reversion:2"
    state.horizon_signature = ""
    state.horizons[1].model = BrokenModel()
    failed = tick("IBM", 4)
    assert isinstance(failed, DeadLettered)
    assert state.selection.champion == "persistence" and state.horizon_signature, "IBM's state was not adopted"
    other = tick("SPY", 5)
    assert isinstance(other, Predicted)
    sent_with_spy = [h.model_event_codec.decode(e) for e in other.model_events]
    assert not sent_with_spy, f"IBM's model event went out with SPY's prediction, under key {other.key!r}"
    with_its_letter = [h.model_event_codec.decode(e) for e in failed.model_events]
    assert [(e["kind"], e["symbol"], e["source_offset"]) for e in with_its_letter] == [("DEMOTION", "IBM", 4)]
    assert failed.key == b"IBM" and h.counters.model_events == {"DEMOTION": 1}
