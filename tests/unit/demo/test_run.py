"""The demo's gateway serves what the demo prints: plain HTTP, no token, whatever the shell exports."""

from __future__ import annotations

from tickcast.demo.run import GATEWAY_GUARDS, open_gateway_env
from tickcast.gateway.settings import GatewaySettings


def test_the_demo_gateway_gets_no_tls_or_clients_file_from_the_shell() -> None:
    # Every gateway file setting that turns on HTTPS or tokens, including ones added later.
    guarded = {
        f"TICKCAST_{name.upper()}"
        for name in GatewaySettings.model_fields
        if name.endswith("_file") and ("tls" in name or "clients" in name)
    }
    assert guarded == {
        "TICKCAST_GATEWAY_CLIENTS_FILE",
        "TICKCAST_GATEWAY_TLS_CERT_FILE",
        "TICKCAST_GATEWAY_TLS_KEY_FILE",
        "TICKCAST_GATEWAY_TLS_KEY_PASSWORD_FILE",
    }
    assert guarded <= set(GATEWAY_GUARDS)
    shell = {name: "/etc/tickcast/secret" for name in guarded} | {"TICKCAST_MODEL": "linear"}
    assert open_gateway_env(shell) == {"TICKCAST_MODEL": "linear"}
