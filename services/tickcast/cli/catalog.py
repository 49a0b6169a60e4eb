"""``tickcast catalog``: every topic, its contract and versions, retention, writers and readers.

Printed as a table, or written as an AsyncAPI 3.0 document (``--asyncapi PATH``), or as the README's
markdown table (``--markdown``); all three come from the topic specs the services create topics from.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer

from tickcast.cli.common import load_settings, user_errors

#: ``[text](target)`` in a markdown cell: a terminal shows the target.
MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\(([^)]*)\)")


def catalog(
    asyncapi: Annotated[Path | None, typer.Option(help="Write the AsyncAPI 3.0 document (JSON) to this path.")] = None,
    markdown: Annotated[bool, typer.Option(help="Print the README's markdown table instead.")] = False,
) -> None:
    """Print the data catalogue: topics, keys, value contracts and schema ids, retention, producers and consumers."""
    from rich.console import Console
    from rich.table import Table

    from tickcast.common.asyncapi import asyncapi_document
    from tickcast.common.catalogue_table import COLUMNS, markdown_table, rows
    from tickcast.common.contracts.base import schemas_dir
    from tickcast.common.contracts.catalogue import read_catalogue
    from tickcast.common.topic_specs import topic_specs
    from tickcast.predictor.settings import PredictorSettings

    settings = load_settings(PredictorSettings)
    with user_errors():
        catalogue = read_catalogue(schemas_dir())
        specs = topic_specs(settings, settings.group_id, settings.snapshots_topic_name)
        if asyncapi is not None:
            document = asyncapi_document(specs, catalogue, settings.bootstrap_servers)
            asyncapi.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            typer.echo(f"wrote AsyncAPI {document['asyncapi']} document of {len(specs)} topics to {asyncapi}")
            return
    if markdown:
        typer.echo(markdown_table(specs, catalogue))
        return
    table = Table(title="tickcast data catalogue", show_lines=True)
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows(specs, catalogue):
        table.add_row(*(MARKDOWN_LINK.sub(r"\2", cell).replace("`", "") for cell in row.cells()))
    Console().print(table)
