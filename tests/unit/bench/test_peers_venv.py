"""The peers' own venv: which interpreter each process runs on, what the scenario says without the venv, and
how many rounds the peers get (``bench.peers.venv``, ``bench.processors``, ``bench.__main__``)."""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
PEERS_PYTHON = str(ROOT / ".venv-peers" / "bin" / "python")


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT))  # bench is a folder of the repository, not an installed package
    import bench.__main__
    import bench.peers.scenario
    import bench.peers.venv
    import bench.processors
    import bench.throughput

    return bench


def test_peers_run_on_the_peers_venv_and_the_bench_processes_on_the_bench_interpreter(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    processors = bench.processors
    pipeline = SimpleNamespace(log_dir=tmp_path)
    started: list[list[str]] = []
    # bytewax-recovery makes its recovery store with the peers' interpreter before it starts.
    monkeypatch.setattr(processors.subprocess, "run", lambda argv, **_: started.append(argv))
    for peer in (*processors.PEERS, *processors.USER_PEERS):
        command = processors.make_processor(peer, pipeline).command()
        assert command[0] == PEERS_PYTHON, (peer, command)
    assert [argv[:3] for argv in started] == [[PEERS_PYTHON, "-m", "bytewax.recovery"]] * 2
    for ours in ("plain", "minimal"):
        assert processors.make_processor(ours, pipeline).command()[0] == sys.executable


def test_a_missing_peers_venv_fails_the_scenario_on_one_line_before_any_drain(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bench.peers.venv, "PEERS_VENV", tmp_path / ".venv-peers")
    drained: list[str] = []
    monkeypatch.setattr(bench.throughput, "drain", lambda context, kind, **_: drained.append(kind))
    options = bench.core.Options(ticks=100)
    with pytest.raises(bench.core.BenchError) as failure:
        bench.peers.scenario.run(SimpleNamespace(options=options))
    message = str(failure.value)
    assert (
        message
        == f"the peers venv {tmp_path / '.venv-peers'} is missing: `make peers-venv` makes it (`make bench` does too)"
    )
    assert drained == []


def fake_venv(tmp_path: Path, script: str) -> Path:
    """A venv whose ``bin/python`` is ``script`` (a shell script), standing for a real one."""
    interpreter = tmp_path / "venv" / "bin" / "python"
    interpreter.parent.mkdir(parents=True)
    interpreter.write_text(f"#!/bin/sh\n{script}\n")
    interpreter.chmod(0o755)
    return tmp_path / "venv"


def test_the_probe_asks_the_peers_interpreter_what_it_can_import(bench: ModuleType, tmp_path: Path) -> None:
    # The bench's own interpreter stands for the peers' (same editable tickcast, so its check passes).
    venv = fake_venv(tmp_path, f'exec {sys.executable} "$@"')
    found = bench.peers.venv.probe({"fastavro", "no_such_package_here"}, venv)
    assert found["found"] == ["fastavro"]
    assert set(found["versions"]) == set(bench.peers.venv.VERSIONS)
    assert re.fullmatch(r"2\.\d+\.\d+", found["versions"]["confluent-kafka"])


def test_a_peers_venv_with_another_checkouts_tickcast_is_refused(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    venv = fake_venv(tmp_path, f'exec {sys.executable} "$@"')
    monkeypatch.setattr(bench.peers.venv, "REPO_ROOT", tmp_path / "elsewhere")
    with pytest.raises(bench.core.BenchError, match=r"has tickcast from .*remakes it$"):
        bench.peers.venv.probe({"fastavro"}, venv)


def test_a_peers_venv_that_does_not_run_is_named_on_one_line(bench: ModuleType, tmp_path: Path) -> None:
    venv = fake_venv(tmp_path, "echo 'ImportError: broken' >&2; exit 1")
    with pytest.raises(bench.core.BenchError) as failure:
        bench.peers.venv.probe({"fastavro"}, venv)
    assert str(failure.value).startswith(f"the peers venv {venv} does not run (ImportError: broken)")
    assert "\n" not in str(failure.value)


@pytest.mark.parametrize(
    ("argv", "rounds", "repeat"),
    [
        ([], 2, 1),  # `make bench`: two rounds of peers, one of everything else
        (["--quick"], 1, 1),
        (["--repeat", "3"], 3, 3),  # dated commands in bench/HISTORY.md keep their meaning
        (["--peers-rounds", "4", "--repeat", "1"], 4, 1),
        (["--quick", "--peers-rounds", "2"], 2, 1),
    ],
)
def test_the_peers_rounds(bench: ModuleType, argv: list[str], rounds: int, repeat: int) -> None:
    options = bench.__main__.options_from(bench.__main__.parse_args(argv))
    assert (options.peers_rounds, options.repeat) == (rounds, repeat)


def test_the_scenario_drains_its_own_rounds_not_repeats(bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench.peers.scenario, "_available", lambda notes: (["bytewax"], {}))
    drained: list[str] = []

    def drain(context: Any, kind: str, **_: Any) -> dict[str, Any]:
        drained.append(kind)
        return {"rate_per_s": 10.0, "answered": 100, "duplicates": 0, "process_cpu_us_per_tick": 40.0}

    monkeypatch.setattr(bench.throughput, "drain", drain)
    result = bench.peers.scenario.run(SimpleNamespace(options=bench.core.Options(ticks=100, repeat=1)))
    assert drained.count("worker") == drained.count("bytewax") == 2
    assert result.inputs["repeat"] == 2


def test_the_makefile_gives_the_peers_their_own_venv_and_never_the_project_one() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "PEERS_VENV := .venv-peers" in makefile
    installs = [line.strip() for line in makefile.splitlines() if "bench-peers" in line and "pip install" in line]
    assert installs == ["$(PEERS_VENV)/bin/python -m pip install --quiet -e '.[bench-peers]'"]
    assert re.search(r"^bench: .*\$\(PEERS_STAMP\)", makefile, re.MULTILINE)
    assert re.search(r"^\trm -rf .*\$\(PEERS_VENV\)", makefile, re.MULTILINE)
    assert ".venv-peers" in (ROOT / ".gitignore").read_text().splitlines()


def test_a_view_2_peer_gets_a_registry_serving_the_catalogue_for_as_long_as_it_runs(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    processors = bench.processors
    envs: dict[str, dict[str, str]] = {}
    monkeypatch.setattr(processors, "spawn", lambda argv, env, output: envs.setdefault(argv[2], env) and None)
    pipeline = SimpleNamespace(log_dir=tmp_path, env=dict)
    user, handler = processors.make_processor("quix-dict-user", pipeline), processors.make_processor("quix", pipeline)
    handler.start()
    assert "BENCH_PEER_REGISTRY_URL" not in envs["bench.peers.quix_peer"]  # view 1 reads raw bytes
    envs.clear()
    user.start()
    url = envs["bench.peers.quix_peer"]["BENCH_PEER_REGISTRY_URL"]
    answer = json.loads(urllib.request.urlopen(f"{url}/schemas/ids/1", timeout=5).read())
    assert json.loads(answer["schema"])["name"] == "Tick"
    user.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/schemas/ids/1", timeout=5)
