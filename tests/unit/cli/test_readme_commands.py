"""README's commands are the CLI's: every command and option it shows exists, and every command is in its table."""

from __future__ import annotations

import re
from typing import Any

from tests.unit.test_readme import CODE, readme, section


def command_rows() -> list[str]:
    """The first cell of each row of the README's command table."""
    text = section(readme(), "## Command line")
    return [line.strip("|").split(" | ")[0] for line in text.splitlines() if line.startswith("| `tickcast ")]


def cli_commands(cell: str) -> list[list[str]]:
    r"""The command paths a cell documents: `tickcast dlq list\|summary` (a table cell's escaped bar) is two.

    >>> cli_commands("`tickcast dlq list\\|summary [--json]`"), cli_commands("`tickcast scale N`")
    ([['dlq', 'list'], ['dlq', 'summary']], [['scale']])
    >>> cli_commands("`tickcast gateway-client NAME`"), cli_commands("`tickcast lag --watch`")
    ([['gateway-client']], [['lag']])
    """
    words = CODE.findall(cell)[0].replace("\\|", "|").split()[1:]
    paths: list[list[str]] = [[]]
    for word in words:
        if not re.fullmatch(r"[a-z][a-z-]*(\|[a-z][a-z-]*)*", word):  # a command word (gateway-client), not --an-option
            break
        paths = [[*path, alternative] for path in paths for alternative in word.split("|")]
    return paths


def cli() -> Any:
    import typer

    from tickcast.cli import app

    return typer.main.get_command(app)


def check_commands(cells: list[str]) -> tuple[list[str], set[str]]:
    """What is wrong in cells that show ``tickcast`` commands, and the commands they show."""
    wrong, shown = [], set()
    for cell in cells:
        for path in cli_commands(cell):
            command = cli()
            for word in path:
                command = getattr(command, "commands", {}).get(word)
                if command is None:
                    wrong.append(f"tickcast {' '.join(path)}: no such command")
                    break
            else:
                shown.add(" ".join(path))
                options = {"--help", *(o for p in command.params for o in p.opts)}
                flags = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", cell))
                wrong.extend(f"tickcast {' '.join(path)} has no option {f}" for f in sorted(flags - options))
    return wrong, shown


def test_every_command_and_option_the_readme_shows_exists() -> None:
    spans = [f"`{span}`" for span in CODE.findall(readme()) if span.startswith("tickcast ")]
    wrong, _ = check_commands(command_rows() + spans)
    assert len(spans) > 30, "the README shows no tickcast command: the pattern is broken"
    assert not wrong, f"README.md shows commands or options the CLI does not have: {wrong}"


def test_every_command_is_in_the_readme_table() -> None:
    _, documented = check_commands(command_rows())
    every = {
        f"{name} {sub}".strip()
        for name, command in cli().commands.items()
        for sub in getattr(command, "commands", None) or [""]
    }
    assert not every - documented, f"commands missing from README's command table: {sorted(every - documented)}"
