"""The opening-range breakout (``catalyst.strategy.orb``) and the strategy helpers (``strategy.base``): pure
functions of a ``MarketView``, no broker, no database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalyst.broker.models import NY, BarInfo
from catalyst.strategy import STRATEGIES, UnknownStrategy, load_strategy
from catalyst.strategy.base import MIN_DOLLAR_VOLUME, MarketView, average_dollar_volume, is_liquid
from catalyst.strategy.orb import OpeningRangeBreakout

OPEN = datetime(2026, 11, 16, 9, 30, tzinfo=NY)
CLOSE = datetime(2026, 11, 16, 16, 0, tzinfo=NY)
AFTER_RANGE = OPEN + timedelta(minutes=20)
ORB = OpeningRangeBreakout()


def daily(symbol: str, dollar_volume: float, close: float = 100.0, sessions: int = 20) -> list[BarInfo]:
    """``sessions`` completed daily bars whose close × volume is ``dollar_volume``."""
    first = OPEN - timedelta(days=sessions + 10)
    return [BarInfo(symbol, first + timedelta(days=i), close, close, close, close, dollar_volume / close)
            for i in range(sessions)]


def opening(symbol: str, low: float, high: float, minutes: int = 15) -> list[BarInfo]:
    """The first ``minutes`` one-minute bars: the range is exactly [low, high]."""
    mid = (low + high) / 2
    bars = []
    for i in range(minutes):
        h = high if i == 3 else mid
        lo = low if i == 7 else mid
        bars.append(BarInfo(symbol, OPEN + timedelta(minutes=i), mid, h, lo, mid, 10_000))
    return bars


def view(prices: Mapping[str, float], *, now: datetime = AFTER_RANGE,
         ranges: Mapping[str, tuple[float, float]] | None = None, adv: Mapping[str, float] | None = None,
         prev_close: Mapping[str, float] | None = None, held: Sequence[str] = (),
         minutes: int = 15) -> MarketView:
    """A market where every symbol in ``prices`` is liquid ($80M), a mover (previous close 98.00) with a
    100.00-101.00 opening range unless told otherwise."""
    ranges = ranges or {}
    adv = adv or {}
    prev_close = prev_close or {}
    return MarketView(
        now=now, session_open=OPEN, session_close=CLOSE,
        daily={s: daily(s, adv.get(s, 80e6), prev_close.get(s, 98.0)) for s in prices},
        minute={s: opening(s, *ranges.get(s, (100.0, 101.0)), minutes=minutes) for s in prices},
        last_price=dict(prices), held=frozenset(held),
    )


# ------------------------------------------------------------------------ strategy.base helpers
def test_average_dollar_volume_uses_the_last_20_sessions() -> None:
    bars = daily("ACME", 10e6, sessions=10) + daily("ACME", 60e6, sessions=20)
    assert average_dollar_volume(bars) == pytest.approx(60e6)
    assert average_dollar_volume(bars, sessions=30) == pytest.approx((10 * 10e6 + 20 * 60e6) / 30)
    assert average_dollar_volume([]) == 0.0


def test_is_liquid_at_fifty_million() -> None:
    assert MIN_DOLLAR_VOLUME == 50_000_000
    assert is_liquid(daily("ACME", 50e6))
    assert not is_liquid(daily("ACME", 49.9e6))
    assert not is_liquid([])


def test_load_strategy() -> None:
    assert isinstance(load_strategy("orb"), OpeningRangeBreakout)
    assert "orb" in STRATEGIES
    with pytest.raises(UnknownStrategy, match=r"CATALYST_STRATEGY='nope'.*orb"):
        load_strategy("nope")


# ------------------------------------------------------------------------ liquidity
def test_illiquid_symbols_are_skipped_with_a_reason_naming_the_filter() -> None:
    ideas, skips = ORB.signals(view({"TINY": 101.2, "BIG": 101.2}, adv={"TINY": 12.3e6}))
    assert [i.symbol for i in ideas] == ["BIG"]
    assert [s.symbol for s in skips] == ["TINY"]
    reason = skips[0].reason
    assert "illiquid" in reason and "$12.3M" in reason and "average daily dollar volume" in reason
    assert "$50M" in reason


def test_no_daily_history_is_illiquid() -> None:
    v = view({"NEW": 101.2})
    v = replace(v, daily={})
    ideas, skips = ORB.signals(v)
    assert ideas == [] and skips[0].symbol == "NEW" and "illiquid" in skips[0].reason


def test_exactly_fifty_million_is_liquid() -> None:
    ideas, skips = ORB.signals(view({"EDGE": 101.2}, adv={"EDGE": 50e6}))
    assert [i.symbol for i in ideas] == ["EDGE"] and skips == []


# ------------------------------------------------------------------------ the entry, stop and target
def test_breakout_gives_a_limit_above_the_range_high_stop_under_the_low_target_two_r() -> None:
    ideas, skips = ORB.signals(view({"ACME": 101.30}))
    assert skips == []
    [idea] = ideas
    assert idea.symbol == "ACME"
    assert idea.entry_price == pytest.approx(101.31)  # a limit a cent above the last price
    assert idea.entry_price > 101.0  # above the range high
    assert idea.stop_price == pytest.approx(99.99)  # a cent under the range low
    risk = idea.entry_price - idea.stop_price
    assert idea.target_price == pytest.approx(round(idea.entry_price + 2 * risk, 2))
    assert idea.target_price - idea.entry_price >= 2 * risk - 0.01


def test_no_breakout_no_idea() -> None:
    ideas, skips = ORB.signals(view({"IN": 100.5, "AT": 101.0, "UNDER": 99.0}))
    assert ideas == [] and skips == []


def test_too_far_past_the_high_is_not_chased() -> None:
    assert ORB.signals(view({"RUN": 101.0 * 1.006}))[0] == []
    assert [i.symbol for i in ORB.signals(view({"OK": 101.0 * 1.0049}))[0]] == ["OK"]


@pytest.mark.parametrize(("low", "high"), [(100.9, 101.0), (90.0, 101.0)], ids=["too-narrow", "too-wide"])
def test_range_width_outside_limits_gives_no_idea(low: float, high: float) -> None:
    assert ORB.signals(view({"ACME": 101.2}, ranges={"ACME": (low, high)})) == ([], [])


def test_a_wider_reward_multiple_moves_the_target() -> None:
    [idea] = OpeningRangeBreakout(reward_multiple=3.0).signals(view({"ACME": 101.30}))[0]
    assert idea.target_price == pytest.approx(round(101.31 + 3 * (101.31 - 99.99), 2))


# ------------------------------------------------------------------------ the time window
@pytest.mark.parametrize("minutes_after_open", [-30, 0, 5, 14, 14.99])
def test_no_ideas_before_the_opening_range_completes(minutes_after_open: float) -> None:
    now = OPEN + timedelta(minutes=minutes_after_open)
    assert ORB.signals(view({"ACME": 101.3}, now=now)) == ([], [])


def test_ideas_from_the_end_of_the_range_to_the_cutoff() -> None:
    for minutes in (15, 60, 150):
        assert ORB.signals(view({"ACME": 101.3}, now=OPEN + timedelta(minutes=minutes)))[0], minutes


@pytest.mark.parametrize("minutes_after_open", [150.5, 151, 240, 390])
def test_no_ideas_after_the_cutoff(minutes_after_open: float) -> None:
    now = OPEN + timedelta(minutes=minutes_after_open)
    assert ORB.signals(view({"ACME": 101.3}, now=now)) == ([], [])


def test_no_ideas_in_the_last_half_hour_of_a_short_session() -> None:
    early_close = OPEN + timedelta(hours=2)  # 11:30: half an hour before it comes before the 150-minute cutoff
    v = replace(view({"ACME": 101.3}), session_close=early_close, now=early_close - timedelta(minutes=29))
    assert ORB.signals(v) == ([], [])
    v = replace(v, now=early_close - timedelta(minutes=30))
    assert ORB.signals(v)[0]


def test_incomplete_opening_bars_are_skipped_with_a_reason() -> None:
    ideas, skips = ORB.signals(view({"GAP": 101.3}, minutes=12))
    assert ideas == []
    assert [(s.symbol, s.reason) for s in skips] == [("GAP", "opening range incomplete (12/15 bars)")]


def test_bars_after_the_range_do_not_widen_it() -> None:
    v = view({"ACME": 101.3})
    late = BarInfo("ACME", OPEN + timedelta(minutes=16), 101, 130.0, 60.0, 101, 1)
    v = replace(v, minute={"ACME": [*v.minute["ACME"], late]})
    [idea] = ORB.signals(v)[0]
    assert idea.stop_price == pytest.approx(99.99)


# ------------------------------------------------------------------------ ranking, held symbols
def test_ranked_by_move_from_the_previous_close_then_by_symbol() -> None:
    prices = {s: 101.3 for s in ("AAA", "BBB", "CCC", "DDD")}
    prev = {"AAA": 99.0, "BBB": 90.0, "CCC": 95.0, "DDD": 95.0}
    ideas, _ = ORB.signals(view(prices, prev_close=prev))
    assert [i.symbol for i in ideas] == ["BBB", "CCC", "DDD", "AAA"]


def test_ranking_is_deterministic_and_capped() -> None:
    symbols = [f"S{i:02d}" for i in range(12)]
    prices = {s: 101.3 for s in symbols}
    prev = {s: 90.0 + (i % 4) for i, s in enumerate(symbols)}
    first = ORB.signals(view(prices, prev_close=prev))
    reordered = view(dict(reversed(list(prices.items()))), prev_close=prev)
    assert ORB.signals(reordered) == first
    assert ORB.signals(view(prices, prev_close=prev)) == first
    assert len(first[0]) == ORB.max_ideas == 5
    assert [i.symbol for i in first[0]] == ["S00", "S04", "S08", "S01", "S05"]


def test_held_symbols_are_skipped_silently() -> None:
    ideas, skips = ORB.signals(view({"HELD": 101.3, "FREE": 101.3, "POOR": 101.3}, held=("HELD", "POOR"),
                                    adv={"POOR": 1e6}))
    assert [i.symbol for i in ideas] == ["FREE"]
    assert skips == []  # held symbols are not even evaluated (no liquidity skip for POOR)


def test_signals_do_not_mutate_the_view() -> None:
    v = view({"ACME": 101.3})
    before = (dict(v.last_price), {k: list(b) for k, b in v.minute.items()}, {k: list(b) for k, b in v.daily.items()})
    ORB.signals(v)
    assert before == (dict(v.last_price), {k: list(b) for k, b in v.minute.items()},
                      {k: list(b) for k, b in v.daily.items()})


# ------------------------------------------------------------------------ property
cents = st.integers(min_value=100, max_value=200_000).map(lambda c: c / 100)  # $1.00 .. $2,000.00


@st.composite
def markets(draw: st.DrawFn) -> MarketView:
    n = draw(st.integers(min_value=1, max_value=8))
    prices: dict[str, float] = {}
    ranges: dict[str, tuple[float, float]] = {}
    prev: dict[str, float] = {}
    for i in range(n):
        symbol = f"S{i}"
        high = draw(cents)
        width = draw(st.floats(min_value=0.0, max_value=0.08, allow_nan=False))
        low = round(high * (1 - width), 2)
        chase = draw(st.floats(min_value=-0.01, max_value=0.01, allow_nan=False))
        prices[symbol] = round(high * (1 + chase), 2)
        ranges[symbol] = (low, high)
        prev[symbol] = draw(cents)
    minutes = draw(st.integers(min_value=15, max_value=400))
    return view(prices, ranges=ranges, prev_close=prev, now=OPEN + timedelta(minutes=minutes))


@settings(max_examples=300, deadline=None)
@given(markets(), st.floats(min_value=2.0, max_value=4.0, allow_nan=False))
def test_every_idea_has_stop_under_entry_under_target_and_at_least_two_r(v: MarketView, multiple: float) -> None:
    ideas, skips = OpeningRangeBreakout(reward_multiple=multiple).signals(v)
    assert len(ideas) <= 5
    assert len({i.symbol for i in ideas}) == len(ideas)
    for idea in ideas:
        assert idea.stop_price < idea.entry_price < idea.target_price
        assert idea.target_price - idea.entry_price >= 2 * (idea.entry_price - idea.stop_price) - 0.01
        assert idea.symbol not in v.held
        for price in (idea.entry_price, idea.stop_price, idea.target_price):
            assert round(price, 2) == price  # whole cents: the broker rejects sub-penny prices
    assert all(s.symbol not in {i.symbol for i in ideas} for s in skips)


def test_a_breakout_that_is_not_a_mover_is_not_traded() -> None:
    """Movers only: the breakout must also stand at least min_move (2%) above the previous close."""
    ideas, _ = ORB.signals(view({"FLAT": 101.2, "MOVER": 101.2}, prev_close={"FLAT": 100.0, "MOVER": 99.0}))
    assert [i.symbol for i in ideas] == ["MOVER"]
