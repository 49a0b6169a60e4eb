"""The CLI never shows a secret: guessable keys and tokens stop `tickcast worker` with one line; URLs are masked.

Each case runs a real ``python -m tickcast worker`` with the setting in its environment, as a container would.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from tickcast.cli.common import fail
from tickcast.predictor.snapshot_keys import new_key
from tickcast.testing.environment import base_env

CASES = {
    "short key": ({"TICKCAST_SNAPSHOT_KEY": "a-31-byte-key-that-is-too-shrt"}, "TICKCAST_SNAPSHOT_KEY", "is 30 bytes"),
    "k8s placeholder": (
        {"TICKCAST_SNAPSHOT_KEY": "change-me-to-a-long-random-secret"},
        "TICKCAST_SNAPSHOT_KEY",
        "placeholder",
    ),
    "compose placeholder": (
        {"TICKCAST_SNAPSHOT_KEY": "compose-demo-key-change-me"},
        "TICKCAST_SNAPSHOT_KEY",
        "placeholder",
    ),
    "short previous key": (
        {"TICKCAST_SNAPSHOT_KEY": new_key(), "TICKCAST_SNAPSHOT_PREVIOUS_KEYS": f"{new_key()},old-short-key"},
        "TICKCAST_SNAPSHOT_PREVIOUS_KEYS",
        "previous key #2 is 13 bytes",
    ),
    "short token": ({"TICKCAST_WEB_TOKEN": "tok-12345"}, "TICKCAST_WEB_TOKEN", "at least 16"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_guessable_secret_stops_the_worker_with_one_line(case: str) -> None:
    settings, variable, why = CASES[case]
    env = {**base_env(), "TICKCAST_BOOTSTRAP_SERVERS": "127.0.0.1:1", **settings}
    result = subprocess.run(
        [sys.executable, "-m", "tickcast", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"tickcast: error: invalid configuration: {variable}: "), lines[0]
    assert why in lines[0], lines[0]
    for value in settings.values():
        for secret in value.split(","):
            assert secret not in result.stderr + result.stdout, "a secret was printed"


def test_cli_errors_mask_url_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit):
        fail("schema registry https://svc-user:pa55-w0rd@sr.example refused subject 'ticks-value'")
    err = capsys.readouterr().err
    assert "https://***@sr.example" in err and "pa55-w0rd" not in err and "svc-user" not in err, err


def test_a_random_key_passes() -> None:
    from tickcast.predictor.settings import PredictorSettings

    key = new_key()
    assert PredictorSettings(bootstrap_servers="k:1", snapshot_key=key).verifying_keys == [key.encode()]
