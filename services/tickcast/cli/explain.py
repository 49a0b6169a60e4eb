"""``tickcast explain``: one prediction, its tick, its model and where its model's state came from."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from tickcast.cli.common import UserError, load_settings, user_errors

#: Prediction fields printed under "model" and "state" rather than "prediction".
MODEL_FIELDS = ("model_name", "model_version", "model_recipe_version", "ticks_learned", "worker")
STATE_FIELDS = ("state_origin", "state_since_offset", "state_snapshot_generation")


def explain(
    topic: Annotated[str, typer.Option(help="Topic of the prediction (e.g. predictions).")],
    partition: Annotated[int, typer.Option(min=0, help="Its partition.")],
    offset: Annotated[int, typer.Option(min=0, help="Its offset.")],
    snapshots_topic: Annotated[
        str | None, typer.Option(help="Default: TICKCAST_SNAPSHOTS_TOPIC or <group>-snapshots.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of sections.")] = False,
    timeout: Annotated[float, typer.Option(min=0.1, help="Longest wait for each record, seconds.")] = 10.0,
) -> None:
    """Print one prediction, the tick it answers, its model recipe and the origin of its model's state."""
    from tickcast.ops.lineage import NotFound
    from tickcast.ops.lineage import explain as explain_one
    from tickcast.predictor.settings import PredictorSettings

    settings = load_settings(PredictorSettings, snapshots_topic=snapshots_topic)
    with user_errors():
        try:
            found = explain_one(
                settings,
                settings.schema_registry_url,
                (topic, partition, offset),
                settings.snapshots_topic_name,
                timeout_s=timeout,
            )
        except (NotFound, TimeoutError) as exc:
            raise UserError(str(exc)) from exc
    prediction = found.prediction
    sections: dict[str, Any] = {
        "prediction": {k: v for k, v in prediction.items() if k not in MODEL_FIELDS + STATE_FIELDS},
        "tick": found.tick if found.tick is not None else {"missing": found.tick_problem},
        "model": {k: prediction[k] for k in MODEL_FIELDS},
        "state": {k: prediction[k] for k in STATE_FIELDS},
    }
    if prediction["state_origin"] == "SNAPSHOT":
        sections["snapshot"] = found.snapshot if found.snapshot is not None else {"missing": found.snapshot_problem}
    if found.notes:
        sections["notes"] = found.notes
    if as_json:
        typer.echo(json.dumps(sections, default=str))
        return
    for title, body in sections.items():
        typer.echo(f"{title}:")
        items = body.items() if isinstance(body, dict) else enumerate(body)
        for name, value in items:
            typer.echo(f"  {name}: {value}")
