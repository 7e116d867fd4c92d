"""Trading metrics: hand-computed values on a fixed trade list, and properties that hold for any input."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalyst.metrics import (
    Trade,
    concurrency_high_water,
    degradation,
    drawdown_from,
    execution_reliability,
    max_drawdown,
    planned_r,
    pnl_between,
    r_multiple,
    reward_risk,
    sizing_errors,
    slippage,
    total_pnl,
    uptime,
    win_rate,
)


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2025, 10, day, hh, mm, tzinfo=UTC)


def trade(
    symbol: str,
    opened: datetime,
    closed: datetime,
    pnl: float,
    *,
    qty: float = 10,
    entry: float = 100.0,
    exit_: float = 100.0,
    risk: float | None = 50.0,
    stop: float | None = 99.0,
    target: float | None = 102.0,
) -> Trade:
    return Trade(symbol, opened, closed, qty, entry, exit_, pnl, risk, stop, target, "target" if pnl > 0 else "stop")


# The fixed trade list. initial_risk = qty x (entry - stop); budget at equity $10,000 x 0.5% = $50.
#
#   #  symbol  open → close (UTC)      qty  entry  stop   target  exit   P&L              risk  R       planned R
#   1  AAPL    27th 10:00 → 11:00      25   100    98     104     104    25 x 4   = +100  50    +2.0    4/2 = 2.0
#   2  MSFT    27th 10:30 → 12:00      50   40     39     42      39     50 x -1  =  -50  50    -1.0    2/1 = 2.0
#   3  NVDA    27th 10:45 → 11:30      20   50     47.5   55      53     20 x 3   =  +60  50    +1.2    5/2.5 = 2.0
#   4  TSLA    28th 09:45 → 10:15      100  20     19     22      19.3   100 x -0.7 = -70 100    -0.7    2/1 = 2.0
#   5  AMD     28th 10:15 → 15:00      30   60     59     62      62     30 x 2   =  +60  30    +2.0    2/1 = 2.0
#   6  META    28th 13:00 → 14:00      5    300    -      -       300    0 (breakeven)    None  None    None
TRADES = (
    trade("AAPL", at(27, 10), at(27, 11), 100.0, qty=25, entry=100, exit_=104, risk=50, stop=98, target=104),
    trade("MSFT", at(27, 10, 30), at(27, 12), -50.0, qty=50, entry=40, exit_=39, risk=50, stop=39, target=42),
    trade("NVDA", at(27, 10, 45), at(27, 11, 30), 60.0, qty=20, entry=50, exit_=53, risk=50, stop=47.5, target=55),
    trade("TSLA", at(28, 9, 45), at(28, 10, 15), -70.0, qty=100, entry=20, exit_=19.3, risk=100, stop=19, target=22),
    trade("AMD", at(28, 10, 15), at(28, 15), 60.0, qty=30, entry=60, exit_=62, risk=30, stop=59, target=62),
    trade("META", at(28, 13), at(28, 14), 0.0, qty=5, entry=300, exit_=300, risk=None, stop=None, target=None),
)


# ------------------------------------------------------------------------------- hand-computed values


def test_win_rate_hand_computed() -> None:
    # wins (P&L > 0): AAPL, NVDA, AMD = 3; META at 0 is not a win but is a trade: 3 / 6 = 0.5
    assert win_rate(TRADES) == 0.5
    assert win_rate(TRADES[:3]) == pytest.approx(2 / 3)  # AAPL, NVDA of AAPL, MSFT, NVDA
    assert win_rate(()) is None


def test_reward_risk_hand_computed() -> None:
    # mean win = (100 + 60 + 60) / 3 = 73.333...; mean |loss| = (50 + 70) / 2 = 60; 73.333 / 60 = 11/9 = 1.2222
    assert reward_risk(TRADES) == pytest.approx(11 / 9)
    # first three: mean win (100 + 60) / 2 = 80; mean loss 50 → 1.6
    assert reward_risk(TRADES[:3]) == pytest.approx(1.6)
    # wins and no losses → infinity; no wins (losses, breakeven or nothing) → None
    assert reward_risk([TRADES[0], TRADES[5]]) == math.inf
    assert reward_risk([TRADES[1], TRADES[3], TRADES[5]]) is None
    assert reward_risk(()) is None


def test_r_multiples_hand_computed() -> None:
    # R = P&L / initial risk: 100/50, -50/50, 60/50, -70/100, 60/30, unknown
    assert [r_multiple(t) for t in TRADES] == [
        pytest.approx(2.0),
        pytest.approx(-1.0),
        pytest.approx(1.2),
        pytest.approx(-0.7),
        pytest.approx(2.0),
        None,
    ]
    # planned R = (target - entry) / (entry - stop): all 2.0 by construction; META has no plan
    assert [planned_r(t) for t in TRADES] == [pytest.approx(2.0)] * 5 + [None]
    # a zero or negative risk cannot define R
    assert r_multiple(trade("X", at(27, 10), at(27, 11), 10.0, risk=0.0)) is None
    # a stop at/above the entry cannot define a planned R
    assert planned_r(trade("X", at(27, 10), at(27, 11), 10.0, entry=100, stop=100)) is None


def test_total_and_windowed_pnl_hand_computed() -> None:
    # total: 100 - 50 + 60 - 70 + 60 + 0 = 100
    assert total_pnl(TRADES) == pytest.approx(100.0)
    assert total_pnl(()) == 0.0
    # by closed_at in [start, end): the 27th: 100 - 50 + 60 = 110; the 28th: -70 + 60 + 0 = -10
    assert pnl_between(TRADES, at(27, 0), at(28, 0)) == pytest.approx(110.0)
    assert pnl_between(TRADES, at(28, 0), at(29, 0)) == pytest.approx(-10.0)
    # half-open: [27th 11:00, 27th 12:00) includes AAPL (closed at 11:00, the start) and NVDA (11:30),
    # excludes MSFT (closed at 12:00, the end): 100 + 60 = 160
    assert pnl_between(TRADES, at(27, 11), at(27, 12)) == pytest.approx(160.0)


def test_max_drawdown_hand_computed() -> None:
    curve = [10_000.0, 10_200.0, 9_945.0, 10_100.0, 10_404.0, 9_883.8, 10_500.0]
    # falls: 10,200 → 9,945 = 255 / 10,200 = 2.5%; 10,404 → 9,883.8 = 520.2 / 10,404 = 5.0% (the largest)
    assert max_drawdown(curve) == pytest.approx(0.05)
    assert max_drawdown([10_000.0, 9_000.0]) == pytest.approx(0.10)
    # order matters: a rise from the low is not a drawdown
    assert max_drawdown([9_000.0, 10_000.0]) == 0.0
    assert max_drawdown([10_000.0]) == 0.0
    assert max_drawdown([]) == 0.0


def test_drawdown_from_hand_computed() -> None:
    assert drawdown_from(10_000.0, 9_000.0) == pytest.approx(0.10)  # 1,000 / 10,000
    assert drawdown_from(10_000.0, 10_500.0) == 0.0  # above the start: no drawdown
    assert drawdown_from(0.0, 9_000.0) == math.inf  # cannot be measured: fail safe
    assert drawdown_from(10_000.0, math.nan) == math.inf


def test_concurrency_high_water_hand_computed() -> None:
    # the 27th: AAPL 10:00-11:00, MSFT 10:30-12:00, NVDA 10:45-11:30 → all three open at 10:45 → 3
    # the 28th: TSLA 09:45-10:15, AMD 10:15-15:00 (back to back: not overlapping), META 13:00-14:00 → 2
    assert concurrency_high_water(TRADES) == 3
    assert concurrency_high_water(TRADES[3:]) == 2
    assert concurrency_high_water(TRADES[3:5]) == 1  # closes at 10:15 exactly when the next opens
    assert concurrency_high_water(()) == 0
    # a zero-length trade still counts once
    assert concurrency_high_water([trade("X", at(27, 10), at(27, 10), 1.0)]) == 1


def test_sizing_errors_hand_computed() -> None:
    # budget = 0.5% x $10,000 = $50; ratios: AAPL 50/50 = 1.0, MSFT 1.0, NVDA 1.0, TSLA 100/50 = 2.0 (> 1.25:
    # oversized), AMD 30/50 = 0.6 (undersized: not an error), META unknown risk (skipped)
    errors = sizing_errors(TRADES, 0.005, 10_000.0)
    assert len(errors) == 1
    assert errors[0].startswith("TSLA opened 2025-10-28 09:45")
    assert "$100.00" in errors[0] and "2.00x" in errors[0] and "$50.00" in errors[0]
    # per-day equity: the 28th at $5,000 → budget $25: TSLA 100/25 = 4.0 (error), AMD 30/25 = 1.2 (≤ 1.25: ok)
    per_day = {"2025-10-27": 10_000.0, "2025-10-28": 5_000.0}
    errors = sizing_errors(TRADES, 0.005, per_day)
    assert [e.split()[0] for e in errors] == ["TSLA"]
    assert "4.00x" in errors[0]
    # a tighter tolerance catches AMD too: 1.2 > 1 + 0.1
    assert [e.split()[0] for e in sizing_errors(TRADES, 0.005, per_day, tolerance=0.1)] == ["TSLA", "AMD"]
    # by symbol, and a trade whose equity is unknown is reported (fail safe)
    errors = sizing_errors(TRADES[:2], 0.005, {"AAPL": 10_000.0})
    assert [e.split()[0] for e in errors] == ["MSFT"]
    assert "equity at entry unknown" in errors[0]


def test_slippage_hand_computed() -> None:
    assert slippage(50.00, 50.05, "buy") == pytest.approx(0.05)  # paid 5 cents more
    assert slippage(50.00, 49.98, "buy") == pytest.approx(-0.02)  # price improvement
    assert slippage(62.00, 61.90, "sell") == pytest.approx(0.10)  # received 10 cents less
    assert slippage(62.00, 61.90, "SELL") == pytest.approx(0.10)
    with pytest.raises(ValueError, match="side"):
        slippage(1.0, 1.0, "short")


def test_degradation_hand_computed() -> None:
    # paper win rate 55%, live 51.15%: (0.55 - 0.5115) / 0.55 = 0.0385 / 0.55 = 0.07 → live 7% worse
    assert degradation(0.55, 0.5115) == pytest.approx(0.07)
    # a negative paper P&L: (-100 - -50) / 100 = -0.5 → live did better
    assert degradation(-100.0, -50.0) == pytest.approx(-0.5)
    assert degradation(0.0, 1.0) is None
    assert degradation(None, 1.0) is None
    assert degradation(1.0, None) is None


def test_uptime_and_execution_hand_computed() -> None:
    assert uptime(390, 388) == pytest.approx(388 / 390)  # 99.49%
    assert uptime(390, 400) == 1.0  # capped
    assert uptime(0, 0) is None
    assert execution_reliability(40, 1) == pytest.approx(0.975)  # 39 / 40
    assert execution_reliability(40, 0) == 1.0
    assert execution_reliability(0, 0) is None


# --------------------------------------------------------------------------------------- properties

cents = st.integers(min_value=-1_000_000, max_value=1_000_000).map(lambda c: c / 100)


def trades_of(pnls: list[float]) -> list[Trade]:
    return [trade(f"S{i}", at(27, 10), at(27, 11), pnl) for i, pnl in enumerate(pnls)]


@given(st.lists(cents, max_size=50))
def test_win_rate_is_a_fraction(pnls: list[float]) -> None:
    rate = win_rate(trades_of(pnls))
    if pnls:
        assert rate is not None and 0.0 <= rate <= 1.0
    else:
        assert rate is None


@given(st.lists(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), max_size=60))
def test_max_drawdown_is_a_fraction(curve: list[float]) -> None:
    assert 0.0 <= max_drawdown(curve) <= 1.0


@given(st.lists(st.floats(min_value=0.0, max_value=1e9, allow_nan=False), max_size=60))
def test_max_drawdown_is_zero_for_a_non_decreasing_curve(curve: list[float]) -> None:
    assert max_drawdown(sorted(curve)) == 0.0


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=600), st.integers(min_value=0, max_value=240)),
        max_size=40,
    )
)
def test_concurrency_is_bounded_by_the_trades(spans: list[tuple[int, int]]) -> None:
    start = at(27, 9, 30)
    trades = [
        trade(f"S{i}", start + timedelta(minutes=o), start + timedelta(minutes=o + d), 1.0)
        for i, (o, d) in enumerate(spans)
    ]
    high = concurrency_high_water(trades)
    assert high <= len(trades)
    if trades:
        assert high >= 1
    else:
        assert high == 0


@given(st.integers(min_value=0, max_value=100_000), st.integers(min_value=0, max_value=200_000))
def test_uptime_is_capped_at_one(expected: int, ok: int) -> None:
    value = uptime(expected, ok)
    if expected == 0:
        assert value is None
    else:
        assert value is not None and 0.0 <= value <= 1.0


@given(st.lists(cents, max_size=40), st.floats(min_value=0.01, max_value=100.0))
def test_reward_risk_is_scale_invariant(pnls: list[float], factor: float) -> None:
    before = reward_risk(trades_of(pnls))
    after = reward_risk(trades_of([p * factor for p in pnls]))
    if before is None or math.isinf(before):
        assert after == before
    else:
        assert after == pytest.approx(before, rel=1e-9)
