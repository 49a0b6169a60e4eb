"""``tickcast evaluate --horizons`` on the real trades file (fails in CI without it, skips elsewhere).

The issue's targets are for the whole file (coverage within ±2 points of nominal on every symbol and horizon;
skill > 0 at 1 s on every symbol), which takes ~4 CPU minutes; this test replays the first 120k trades (~11 s)
and asserts what is honest there. Under-coverage is held to the target, -2 points, in every cell. Over-coverage
is held to +2.5 points at 1 s and 10 s, and to +5 at 60 s, where the prefix holds only ~150-450 labels per
symbol and the adaptive half-width is still settling (ACI's bound on the miss rate shrinks as 1 / labels).
Measured on this prefix at 0.90 nominal: 0.897-0.908 at 1 s, 0.907-0.919 at 10 s, 0.903-0.939 at 60 s. The
intervals from before skipped forecasts were credited to both queued neighbours gave 0.875 (AIG 1 s) and 0.876
(BAC 1 s) here; on the first 300k trades they gave 0.882 at worst, inside the target, so that longer prefix
would not tell the two apart.
The whole-file table is recorded with ``tickcast evaluate --horizons 1s,10s,60s --model linear``; interval
rules are compared on its residual streams (``--residuals``, :mod:`tickcast.evaluation.residual_streams`).
"""

from __future__ import annotations

import json
import subprocess  # nosec B404 # runs this project's own CLI
import sys

import pytest

from tests.conftest import require_trades_file

TICKS_LIMIT = 120_000
NOMINAL = 0.9
#: Over-coverage allowed per horizon on the prefix (see the module docstring).
OVER = {"1s": 0.025, "10s": 0.025, "60s": 0.05}
SYMBOLS = ["AIG", "BAC", "IBM", "SPY"]


@pytest.mark.timeout(600)
def test_evaluate_reports_skill_and_coverage_per_symbol_and_horizon_on_real_trades() -> None:
    trades = require_trades_file()
    result = subprocess.run(  # nosec B603 # fixed argv, no shell
        [sys.executable, "-m", "tickcast", "evaluate", str(trades), "--horizons", "1s,10s,60s", "--model", "linear",
         "--limit", str(TICKS_LIMIT), "--timezone", "America/New_York", "--json"],
        capture_output=True, text=True, check=False, timeout=590,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert sorted({(r["symbol"], r["horizon"]) for r in rows}) == [
        (s, h) for s in SYMBOLS for h in ("10s", "1s", "60s")
    ]
    for row in rows:
        assert row["nominal_coverage"] == NOMINAL and row["scored"] > 5_000, row
        assert NOMINAL - 0.02 <= row["interval_coverage"] <= NOMINAL + OVER[row["horizon"]], row
        assert row["skill"] is not None and row["skill"] > -0.1, row
    one_second = {r["symbol"]: r["skill"] for r in rows if r["horizon"] == "1s"}
    assert one_second["BAC"] > 0.03 and one_second["IBM"] > 0.0, one_second
