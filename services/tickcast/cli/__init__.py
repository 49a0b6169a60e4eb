"""The ``tickcast`` command line: one entry point for every service and tool.

This module only assembles the app; each command group lives in its own module (:mod:`.services`,
:mod:`.produce`, :mod:`.evaluate`, :mod:`.dlq`, :mod:`.ops`), and what they share in :mod:`.common` and
:mod:`.tick_files`. Commands import the services they run inside their bodies, so ``tickcast --help`` and a
worker's start-up load only what they use. Errors a user can fix print one line and exit non-zero.
"""

from __future__ import annotations

import typer

from tickcast.cli import catalog, clients, dlq, evaluate, explain, models, ops, produce, schema, services

app = typer.Typer(help="tickcast: streaming per-symbol price prediction on Kafka.", no_args_is_help=True)
# Registration order is the order of `tickcast --help`: commands first, then the command groups.
app.command("broker")(services.broker)
app.command("evaluate")(evaluate.evaluate)
app.command("worker")(services.worker)
app.command("gateway")(services.gateway)
app.command("gateway-client")(clients.gateway_client)
app.command("subscribe")(services.subscribe)
app.command("demo")(services.demo)
app.command("lag")(ops.lag)
app.command("supervise")(ops.supervise)
app.command("scale")(ops.scale)
app.command("autoscale")(ops.autoscale)
app.command("models")(models.models)
app.command("explain")(explain.explain)
app.command("catalog")(catalog.catalog)
app.add_typer(services.topics_app, name="topics")
app.add_typer(produce.produce_app, name="produce")
app.add_typer(dlq.dlq_app, name="dlq")
app.add_typer(schema.schema_app, name="schema")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``tickcast`` console script and of ``python -m tickcast``; exits with the command's code."""
    app(args=argv, prog_name="tickcast")
