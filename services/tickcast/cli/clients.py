"""``tickcast gateway-client NAME``: a new random token for a gateway client, and its line of the clients file."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer

from tickcast.cli.common import fail

#: Random bytes of a token (base64url: 43 characters); guessing one is out of reach.
TOKEN_BYTES = 32


def gateway_client(
    name: Annotated[str, typer.Argument(help="The client's name: in logs and metrics (A-Z a-z 0-9 . _ -).")],
) -> None:
    """Make a token for a gateway client: the token goes to stderr, once; the clients-file line to stdout.

    `tickcast gateway-client desk-7 >> clients` appends the line (the token's SHA-256, never the token) to the
    file behind TICKCAST_GATEWAY_CLIENTS_FILE; give the token to the client, who sends it as
    'Authorization: Bearer <token>'.
    """
    from tickcast.gateway.auth import client_line

    token = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        line = client_line(name, token)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(f"token for {name} (shown once, not stored anywhere): {token}", err=True)
    typer.echo(line)
