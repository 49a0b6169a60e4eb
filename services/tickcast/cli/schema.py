"""``tickcast schema check`` and ``tickcast schema register``: the compatibility gate, and explicit registration.

``check`` runs in ``make test``: every contract of ``schemas/`` against the earlier versions its subject's
mode names (see :mod:`tickcast.common.contracts.gate`). With ``TICKCAST_SCHEMA_REGISTRY_URL`` set it also
asks the registry whether each current contract may follow what the registry holds. ``register`` is the
only way a contract gets into a registry: producers and workers look ids up and never register.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tickcast.cli.common import fail, load_settings, user_errors

schema_app = typer.Typer(help="Check and register the Avro contracts.", no_args_is_help=True)


@schema_app.command("check")
def schema_check(
    local_only: Annotated[bool, typer.Option(help="Skip the registry even if one is configured.")] = False,
    directory: Annotated[Path | None, typer.Option(help="Contracts and catalogue.json (default: schemas/).")] = None,
) -> None:
    """Check every contract against its earlier versions (and the registry, if configured); exit 1 on a breach."""
    from tickcast.common.contracts.base import schemas_dir
    from tickcast.common.contracts.catalogue import read_catalogue
    from tickcast.common.contracts.gate import check_catalogue, pair_breaches
    from tickcast.common.settings import CommonSettings

    settings = load_settings(CommonSettings)
    with user_errors():
        directory = directory or schemas_dir()
        catalogue = read_catalogue(directory)
        findings = check_catalogue(directory)
        notes = [(s, b) for s, _, _, b in pair_breaches(catalogue) if not b.blocking]
        for subject, versions in catalogue.subjects().items():
            ids = ", ".join(str(v.schema_id) for v in versions)
            typer.echo(f"{subject}: {catalogue.mode(subject).value}, ids {ids}")
        for subject, note in notes:
            typer.echo(f"note: {subject}: {note}")
        blocking = [str(f) for f in findings]
        if settings.schema_registry_url and not local_only:
            blocking += _registry_findings(settings.schema_registry_url)
        for finding in blocking:
            typer.echo(f"INCOMPATIBLE {finding}", err=True)
        if blocking:
            fail(f"{len(blocking)} schema problem(s); see above", code=1)
        typer.echo("schemas: ok")


@schema_app.command("register")
def schema_register() -> None:
    """Register the current contracts in the Schema Registry, after it says they are compatible."""
    from tickcast.common.contracts.registry_admin import RegistryAdmin, current_contracts
    from tickcast.common.security import schema_registry_config
    from tickcast.common.settings import CommonSettings

    settings = load_settings(CommonSettings)
    if not settings.schema_registry_url:
        fail("TICKCAST_SCHEMA_REGISTRY_URL is not set: there is no registry to register in")
    with user_errors():
        admin = RegistryAdmin(
            settings.schema_registry_url, schema_registry_config(settings, settings.schema_registry_url)
        )
        for contract in current_contracts(settings):
            verdict = admin.ask(contract.subject, contract.schema)
            if not verdict.compatible:
                fail(f"{contract.subject}: the registry refuses {contract.file}: {'; '.join(verdict.messages)}", 1)
            schema_id = admin.register(contract.subject, contract.schema, contract.mode)
            typer.echo(f"{contract.subject}: {contract.file} registered as id {schema_id} ({contract.mode.value})")


def _registry_findings(url: str) -> list[str]:
    from tickcast.common.contracts.registry_admin import RegistryAdmin, current_contracts
    from tickcast.common.security import schema_registry_config
    from tickcast.common.settings import CommonSettings

    settings = load_settings(CommonSettings)
    admin = RegistryAdmin(url, schema_registry_config(settings, url))
    problems = []
    for contract in current_contracts(settings):
        verdict = admin.ask(contract.subject, contract.schema)
        where = "new subject" if verdict.first_version else "compatible with the registry's latest version"
        if verdict.compatible:
            typer.echo(f"{contract.subject}: registry: {where}")
        else:
            problems.append(f"{contract.subject}: registry says {contract.file} is incompatible: "
                            + "; ".join(verdict.messages or ["(no reason given)"]))  # fmt: skip
    return problems
