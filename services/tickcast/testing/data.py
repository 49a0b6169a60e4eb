"""Where the real market data lives (``../shared/data`` beside the checkout), defined once.

The data is never copied into the repository. On a developer's machine without it, tests that need it
skip with the reason; in CI (``CI=true``) its absence is an error, so a green CI always means they ran.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

import tickcast

#: The checkout's root: ``services/tickcast/__init__.py`` is two folders below it.
REPO_ROOT = Path(tickcast.__file__).resolve().parents[2]


class DataSettings(BaseSettings):
    """Where the shared data is, and whether this run is CI (where missing data must fail, not skip).

    >>> s = DataSettings(ci=True, shared_data_dir=Path("/nowhere"))
    >>> s.ci, s.trades_file
    (True, PosixPath('/nowhere/lean/tick_trades.csv.gz'))
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    ci: bool = Field(False, validation_alias=AliasChoices("CI", "ci"), description="Set by CI runners (CI=true).")
    shared_data_dir: Path = Field(
        REPO_ROOT.parent / "shared" / "data",
        validation_alias=AliasChoices("TICKCAST_SHARED_DATA_DIR", "shared_data_dir"),
        description="The shared market data folder (see its README).",
    )

    @field_validator("ci", mode="before")
    @classmethod
    def _empty_is_false(cls, value: object) -> object:
        """``CI=`` (set but empty) means not CI, as shells and runners use it.

        >>> DataSettings(ci="").ci
        False
        """
        return False if value == "" else value

    @property
    def trades_file(self) -> Path:
        """Real US equity trades, one row per trade (``lean/tick_trades.csv.gz``)."""
        return self.shared_data_dir / "lean" / "tick_trades.csv.gz"


class DataMissing(Exception):
    """Real data a test needs is absent; in CI this is a failure, elsewhere a reason to skip."""


def trades_file(settings: DataSettings | None = None) -> Path:
    """The real trades file, or :class:`DataMissing` naming where it was looked for.

    >>> trades_file(DataSettings(shared_data_dir=Path("/nowhere")))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tickcast.testing.data.DataMissing: real market data not available: /nowhere/lean/tick_trades.csv.gz is absent ...
    """
    path = (settings or DataSettings()).trades_file
    if not path.is_file():
        raise DataMissing(f"real market data not available: {path} is absent (see ../shared/data/README.md)")
    return path
