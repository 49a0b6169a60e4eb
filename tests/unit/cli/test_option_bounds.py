"""Numbers a command cannot use are refused as usage errors (exit 2, the option named), before any broker is
asked: a negative or NaN rate sent ticks as fast as it could, a negative count or duration sent nothing and
exited 0, a mistyped --symbols built its list of names until the memory ran out, a negative demo --seconds
ran until Ctrl-C, and a negative --speed, evaluate --limit or a lag --stats-url that is not a URL ended in a
traceback. A --time-format strptime cannot read is refused as well, where every row of the file was
reported bad_time."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tickcast.cli import app as cli
from tickcast.cli import produce


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["produce", "synthetic", "--rate", "-1"], "--rate"),
        (["produce", "synthetic", "--rate", "nan"], "--rate"),
        (["produce", "synthetic", "--count", "-1"], "--count"),
        (["produce", "synthetic", "--seconds", "-1"], "--seconds"),
        (["produce", "synthetic", "--seconds", "inf"], "--seconds"),
        (["produce", "synthetic", "--symbols", "1000000000"], "--symbols"),  # a list that outgrew the memory
        (["produce", "synthetic", "--symbols", "100001"], "--symbols"),
        (["produce", "file", "ticks.csv", "--speed", "-1"], "--speed"),
        (["produce", "file", "ticks.csv", "--speed", "nan"], "--speed"),
        (["produce", "file", "ticks.csv", "--limit", "-5"], "--limit"),
        (["evaluate", "ticks.csv", "--limit", "-1"], "--limit"),
        (["evaluate", "ticks.csv", "--horizons", "1s", "--gap-s", "-1"], "--gap-s"),
        (["evaluate", "ticks.csv", "--horizons", "1s", "--gap-s", "0"], "--gap-s"),
        (["evaluate", "ticks.csv", "--horizons", "1s", "--gap-s", "nan"], "--gap-s"),
        (["subscribe", "--count", "-1"], "--count"),
        (["subscribe", "--timeout", "-1"], "--timeout"),
        (["demo", "--seconds", "-5"], "--seconds"),
        (["autoscale", "--dry-run", "--up-cooldown", "nan"], "--up-cooldown"),
        (["autoscale", "--dry-run", "--down-cooldown", "inf"], "--down-cooldown"),
        (["autoscale", "--dry-run", "--per-worker-rate", "inf"], "--per-worker-rate"),
        (["autoscale", "--dry-run", "--drain-target", "nan"], "--drain-target"),
        (["autoscale", "--dry-run", "--interval", "nan"], "--interval"),
        (["autoscale", "--dry-run", "--interval", "inf"], "--interval"),
        (["lag", "--stats-url", "notaurl"], "--stats-url"),
        (["lag", "--watch", "--interval", "inf"], "--interval"),  # waiting inf raised OverflowError
    ],
)
def test_an_unusable_number_is_a_usage_error(
    args: list[str], option: str, tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    (tmp_path / "ticks.csv").write_text("ts_et,symbol,price,size\n2013-10-07T09:30:00,SPY,100,1\n")  # type: ignore[operator]
    monkeypatch.setenv("TICKCAST_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    monkeypatch.setenv("TICKCAST_CONNECT_TIMEOUT_S", "1")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert f"Invalid value for '{option}'" in result.output


def test_a_bad_value_given_as_an_option_is_not_blamed_on_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TICKCAST_MODEL", raising=False)
    result = CliRunner().invoke(cli, ["worker", "--model", "nope"])
    assert result.exit_code == 2
    assert "TICKCAST_MODEL (given on the command line): unknown model 'nope'" in result.output, result.output


@pytest.mark.parametrize("command", [["produce", "file"], ["evaluate"]])
@pytest.mark.parametrize("pattern", ["%Q", "%Y-%m-%d %H:%M:%S%", "%G-%m-%d"])
def test_a_time_format_strptime_cannot_read_is_one_usage_error_before_any_row(
    command: list[str], pattern: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before, such a pattern got past the start and every row of the file was reported as bad_time.
    (tmp_path / "ticks.csv").write_text("ts_et,symbol,price,size\n2013-10-07 09:30:00,SPY,100,1\n")
    monkeypatch.setattr(produce, "require_broker", broker_asked)
    result = CliRunner().invoke(cli, [*command, str(tmp_path / "ticks.csv"), "--time-format", pattern])
    assert (result.exit_code, result.output.count("\n")) == (2, 1), (result.output, result.exception)
    assert result.output.startswith(f"tickcast: error: time_format {pattern!r} (--time-format) "), result.output


def broker_asked(*args: object) -> None:
    raise AssertionError("the broker was asked before the options were checked")
