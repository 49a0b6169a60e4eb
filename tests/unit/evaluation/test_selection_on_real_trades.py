"""Issue 16's target on the real trades (fails in CI without the file, skips elsewhere).

"Per-symbol selection never ends below the best single model by more than 1% of skill, on each symbol",
measured strictly: the whole-run skill of what selection served against the whole-run skill of the best of
its models run alone, each scored on every tick (``every_tick``: a warming-up model's 0 counts, so all runs
are scored on the same ticks), on the file's first 200,000 trades. "1% of skill" is 0.01 skill points
(skill is a fraction of persistence's RMSE removed, so one percent of it is a point on that scale); a 1%
*relative* bound would be 0.0002 on AIG, far inside the noise between two runs of the same model's warm-up.

Two starts: the weak ``mean-reversion`` as configured champion (its skill is negative on three symbols),
and the default ``linear`` (the best single model everywhere), which must not lose to selection either.
"""

from __future__ import annotations

import itertools

import pytest

from tests.conftest import require_trades_file

TRADES = 200_000
MODELS = ("linear", "pa", "mean-reversion")
SYMBOLS = ["AIG", "BAC", "IBM", "SPY"]
ONE_PERCENT_OF_SKILL = 0.01


@pytest.mark.long
@pytest.mark.timeout(1200)
def test_selection_ends_within_one_percent_of_skill_of_the_best_single_model_on_every_symbol() -> None:
    from tickcast.evaluation import evaluate
    from tickcast.predictor.selection.champion import SelectionConfig
    from tickcast.predictor.selection.drift import DriftPolicy
    from tickcast.producer.columns import ColumnMapping
    from tickcast.producer.replay import read_ticks
    from tickcast.producer.row_errors import RowError

    rows = read_ticks(require_trades_file(), ColumnMapping(timezone="America/New_York"))
    ticks = itertools.islice((row for row in rows if not isinstance(row, RowError)), TRADES)
    starts = [
        SelectionConfig(incumbent, tuple(m for m in MODELS if m != incumbent), drift=DriftPolicy("off"))
        for incumbent in ("mean-reversion", "linear")
    ]
    report = evaluate(ticks, MODELS, selections=starts, every_tick=True)
    skill = {run.name: {s.symbol: s.skill for s in run.symbols} for run in report.models}
    best = {symbol: max(skill[m][symbol] or -1.0 for m in MODELS) for symbol in SYMBOLS}
    assert best["SPY"] > 0.05 and best["BAC"] > 0.1, best  # the run scored what it should
    for start in starts:
        served = skill[f"select:{start.incumbent}>{','.join(start.challengers)}"]
        assert sorted(served) == SYMBOLS
        gaps = {symbol: round(best[symbol] - (served[symbol] or -1.0), 4) for symbol in SYMBOLS}
        assert all(gap <= ONE_PERCENT_OF_SKILL for gap in gaps.values()), (start.incumbent, gaps, best)
