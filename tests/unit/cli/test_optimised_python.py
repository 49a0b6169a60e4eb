"""The CLI under ``python -OO``, which strips docstrings: every command's help, and one-line errors, no traceback.

The default autoscale schedule once lived in a docstring, so under ``-OO`` `scale`, `lag`, `supervise` and
`autoscale` died with a traceback. Each check runs a fresh ``-OO`` interpreter, as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: Every command and group; the subprocess also walks the app, so a new command cannot be missed.
COMMANDS = {
    "", "broker", "evaluate", "worker", "gateway", "gateway-client", "subscribe", "demo", "lag", "supervise", "scale",
    "autoscale", "topics", "topics create", "topics check", "produce", "produce synthetic", "produce file", "dlq",
    "dlq list", "dlq summary", "dlq replay", "schema", "schema check", "schema register", "explain", "catalog",
    "models",
}  # fmt: skip

# One interpreter for all --help pages (a fresh one per page would take a minute on a busy machine).
EVERY_HELP = """
import json, sys
import typer
from typer.testing import CliRunner
import tickcast.cli
from tickcast.cli import app

assert sys.flags.optimize == 2 and tickcast.cli.__doc__ is None, "not running under -OO"

def walk(command, path):
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, [*path, name])

runner = CliRunner()
results = {}
for path in walk(typer.main.get_command(app), []):
    result = runner.invoke(app, [*path, "--help"], prog_name="tickcast")
    error = None if result.exception is None or isinstance(result.exception, SystemExit) else repr(result.exception)
    results[" ".join(path)] = {"exit_code": result.exit_code, "output": result.output, "error": error}
print(json.dumps(results))
"""


def run_optimised(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")}
    return subprocess.run(
        [sys.executable, "-OO", *args],
        cwd=cwd,
        env={**clean, "COLUMNS": "120", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode not in (0, None), result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("tickcast: error: ")]
    assert len(ours) == 1 and expected in ours[0], result.stderr
    # librdkafka writes its own connection log lines ("%3|...|FAIL|...") from its threads, before or after ours.
    others = [line for line in result.stderr.splitlines() if line.strip() and line not in ours]
    assert all(line.startswith(("%", "{")) for line in others), result.stderr


def test_every_commands_help_works_without_docstrings(tmp_path: Path) -> None:
    result = run_optimised("-c", EVERY_HELP, cwd=tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    pages = json.loads(result.stdout)
    assert set(pages) == COMMANDS, "the app's commands changed: update COMMANDS"
    for path, page in pages.items():
        assert page["error"] is None and page["exit_code"] == 0, (path, page)
        assert f"Usage: tickcast {path}".strip() in page["output"], (path, page["output"])
    assert "--state-dir" in pages["scale"]["output"] and "--dry-run" in pages["autoscale"]["output"]


@pytest.mark.parametrize("command", ["--help", "autoscale --help", "lag --help", "supervise --help"])
def test_help_through_python_dash_m(tmp_path: Path, command: str) -> None:
    result = run_optimised("-m", "tickcast", *command.split(), cwd=tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "Usage: tickcast" in result.stdout


def test_scale_without_a_supervisor_is_one_line(tmp_path: Path) -> None:
    result = run_optimised("-m", "tickcast", "scale", "2", "--state-dir", str(tmp_path / "state"), cwd=tmp_path)
    assert_one_line_error(result, "no supervisor is running on")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_autoscale_with_a_bad_config_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "autoscale.toml"
    bad.write_text("[dynamic]\nper_worker_rat = 1\n")
    result = run_optimised("-m", "tickcast", "autoscale", "--schedule", str(bad), cwd=tmp_path)
    assert_one_line_error(result, "unknown key(s) per_worker_rat")


def test_lag_without_a_broker_is_one_line(tmp_path: Path) -> None:
    env = {"TICKCAST_BOOTSTRAP_SERVERS": "127.0.0.1:1", "TICKCAST_ADMIN_TIMEOUT_S": "0.5"}
    result = run_optimised("-m", "tickcast", "lag", "--state-dir", str(tmp_path / "state"), cwd=tmp_path, env=env)
    assert_one_line_error(result, "did not answer within")
