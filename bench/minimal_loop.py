"""The floor: the same job as a worker in the fewest lines, written without tickcast's handler.

``python -m bench.minimal_loop --status-file PATH``: confluent-kafka consume → fastavro decode →
``river.stats`` features → the default model recipe → fastavro encode → produce, one record at a time.
It keeps what a prediction must carry (every field of the contract, lineage included) and the
prequential order (learn the previous features against this return, then predict), but none of the
worker's guarantees: no validation, no outlier guard, no dead letters, no checkpoints, no metrics.
So ``plain loop / minimal loop`` is the price of the handler's own work and guarantees, and
``worker / minimal loop`` that of everything tickcast adds.
"""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import Message

from bench.peers.recipe import Recipe, Symbol
from bench.plain_loop import PlainLoop, main
from tickcast.predictor.settings import PredictorSettings


class MinimalLoop(PlainLoop):
    """:class:`~bench.plain_loop.PlainLoop`'s consumer, producer and status file around :mod:`bench.peers.recipe`."""

    def __init__(self, settings: PredictorSettings, status_file: Path, batch: int = 500) -> None:
        super().__init__(settings, status_file, batch)
        self.recipe = Recipe(settings)
        self.symbols: dict[str, Symbol] = {}
        self.ticks_in = 0

    def counts(self) -> dict[str, int]:
        return {"ticks_in": self.ticks_in, "predictions_out": self.ticks_in, "dead_letters": 0}

    def predict(self, message: Message) -> bytes:
        tick = self.recipe.decode(message.value() or b"")
        state = self.symbols.get(tick["symbol"])
        if state is None:
            state = self.symbols[tick["symbol"]] = self.recipe.new_symbol()
        topic, partition, offset = message.topic() or "", message.partition() or 0, message.offset() or 0
        return self.recipe.step(state, tick, topic, partition, offset, message.timestamp()[1])

    def handle(self, messages: list[Message]) -> None:
        produce, topic = self.producer.produce, self.settings.predictions_topic
        for message in messages:
            if message.error() is not None:
                continue
            self.ticks_in += 1
            value = self.predict(message)
            while True:
                try:
                    produce(topic, value, message.key())
                    break
                except BufferError:
                    self.producer.poll(0.05)
        self.producer.poll(0)


if __name__ == "__main__":
    raise SystemExit(main(loop_class=MinimalLoop, name="minimal_loop"))
