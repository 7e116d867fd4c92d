"""Market: deterministic seeded bars, bar invariants, no look-ahead, universe shape."""

from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalyst_sim.calendar import NY, MarketCalendar
from catalyst_sim.market import Bar, Market, SymbolSpec, default_symbols
from catalyst_sim.scenario import Event, Scenario

START, END = dt.date(2026, 6, 1), dt.date(2027, 3, 31)
WEEK = [dt.date(2026, 11, 23), dt.date(2026, 11, 24), dt.date(2026, 11, 25), dt.date(2026, 11, 27)]


@pytest.fixture(scope="module")
def cal() -> MarketCalendar:
    return MarketCalendar(START, END)


@pytest.fixture(scope="module")
def market(cal: MarketCalendar) -> Market:
    return Market(cal, seed=42)


def ny(d: dt.date, h: int, mi: int = 0) -> dt.datetime:
    return dt.datetime.combine(d, dt.time(h, mi), NY)


def check_bar(b: Bar) -> None:
    assert b.l <= min(b.o, b.c) and b.h >= max(b.o, b.c)
    assert b.l <= b.vw <= b.h
    assert b.v > 0 and b.n >= 1
    assert b.l >= 1.0
    assert b.t.tzinfo is not None and b.t.utcoffset() == dt.timedelta(0)
    for price in (b.o, b.h, b.l, b.c):
        assert round(price, 2) == price
    assert round(b.vw, 4) == b.vw


# -- determinism ---------------------------------------------------------------------------


def test_same_seed_is_byte_identical(cal: MarketCalendar) -> None:
    a, b = Market(cal, seed=7), Market(cal, seed=7)
    days = [dt.date(2026, 6, 1), dt.date(2026, 9, 15), *WEEK]
    for sym in ("ACME", "TRIL"):
        for d in days:
            assert repr(a.minute_bars(sym, d)) == repr(b.minute_bars(sym, d))
            assert repr(a.daily_bar(sym, d)) == repr(b.daily_bar(sym, d))


def test_generation_order_does_not_matter(cal: MarketCalendar) -> None:
    a, b = Market(cal, seed=7), Market(cal, seed=7)
    late = a.minute_bars("BOLT", dt.date(2026, 11, 24))
    for s in cal.sessions_between(dt.date(2026, 11, 2), dt.date(2026, 11, 24)):
        b.minute_bars("BOLT", s.date)
    assert repr(late) == repr(b.minute_bars("BOLT", dt.date(2026, 11, 24)))


def test_different_seed_differs(cal: MarketCalendar) -> None:
    a, b = Market(cal, seed=7), Market(cal, seed=8)
    assert repr(a.minute_bars("ACME", WEEK[0])) != repr(b.minute_bars("ACME", WEEK[0]))


# -- invariants ----------------------------------------------------------------------------


def test_bar_invariants_all_symbols_several_days(market: Market, cal: MarketCalendar) -> None:
    days = [s.date for s in cal.sessions[::23]] + WEEK
    for spec in market.symbols:
        for d in days:
            bars = market.minute_bars(spec.symbol, d)
            assert len(bars) in (390, 210)
            for prev, b in itertools.pairwise(bars):
                assert b.o == prev.c  # the path is continuous
                assert b.t - prev.t == dt.timedelta(minutes=1)
            for b in bars:
                check_bar(b)


@settings(max_examples=60, deadline=None)
@given(sym=st.integers(0, 49), day=st.integers(0, 200))
def test_daily_bar_aggregates_minute_bars(market: Market, cal: MarketCalendar, sym: int, day: int) -> None:
    symbol = market.symbols[sym].symbol
    d = cal.sessions[day].date
    bars = market.minute_bars(symbol, d)
    daily = market.daily_bar(symbol, d)
    assert daily is not None
    check_bar(daily)
    assert daily.o == bars[0].o and daily.c == bars[-1].c
    assert daily.h == max(b.h for b in bars) and daily.l == min(b.l for b in bars)
    assert daily.v == sum(b.v for b in bars) and daily.n == sum(b.n for b in bars)
    assert daily.t == dt.datetime.combine(d, dt.time(), NY).astimezone(dt.UTC)


def test_daily_bar_time_is_ny_midnight_in_utc(market: Market) -> None:
    winter = market.daily_bar("ACME", dt.date(2026, 11, 20))
    summer = market.daily_bar("ACME", dt.date(2026, 7, 1))
    assert winter is not None and summer is not None
    assert winter.t == dt.datetime(2026, 11, 20, 5, tzinfo=dt.UTC)
    assert summer.t == dt.datetime(2026, 7, 1, 4, tzinfo=dt.UTC)


def test_daily_bar_upto_uses_only_finished_minutes(market: Market) -> None:
    d = WEEK[1]
    upto = ny(d, 11, 17)
    partial = market.daily_bar("BOLT", d, upto=upto)
    finished = [b for b in market.minute_bars("BOLT", d) if b.t + dt.timedelta(minutes=1) <= upto]
    assert partial is not None
    assert len(finished) == 107
    assert partial.c == finished[-1].c and partial.v == sum(b.v for b in finished)
    assert partial.h == max(b.h for b in finished)
    assert market.daily_bar("BOLT", d, upto=ny(d, 9, 30) + dt.timedelta(seconds=30)) is None
    assert market.daily_bar("BOLT", d, upto=ny(d, 20)) == market.daily_bar("BOLT", d)


def test_prices_never_below_one_dollar(cal: MarketCalendar) -> None:
    penny = SymbolSpec("PENY", "Penny Dreadful Inc.", "NASDAQ", 1.3, 0.2, 2_000_000)
    m = Market(cal, seed=3, symbols=[penny])
    for s in cal.sessions[:60]:
        for b in m.minute_bars("PENY", s.date):
            check_bar(b)


def test_day_opens_near_previous_close(market: Market, cal: MarketCalendar) -> None:
    for spec in market.symbols:
        prev = market.daily_bar(spec.symbol, WEEK[0])
        nxt = market.daily_bar(spec.symbol, WEEK[1])
        assert prev is not None and nxt is not None
        assert abs(nxt.o / prev.c - 1) < 6 * 0.3 * spec.daily_vol + 0.01


# -- sessions ------------------------------------------------------------------------------


def test_early_close_has_210_bars(market: Market) -> None:
    bars = market.minute_bars("ACME", dt.date(2026, 11, 27))
    assert len(bars) == 210
    assert bars[-1].t + dt.timedelta(minutes=1) == ny(dt.date(2026, 11, 27), 13)


def test_holiday_has_no_bars(market: Market) -> None:
    assert market.minute_bars("ACME", dt.date(2026, 11, 26)) == []
    assert market.daily_bar("ACME", dt.date(2026, 11, 26)) is None
    assert market.bar_at("ACME", ny(dt.date(2026, 11, 26), 12)) is None


def test_bar_at_matches_minute_bars(market: Market) -> None:
    d = WEEK[2]
    bars = market.minute_bars("CRUX", d)
    assert market.bar_at("CRUX", ny(d, 9, 30)) == bars[0]
    assert market.bar_at("CRUX", ny(d, 12, 0)) == bars[150]
    assert market.bar_at("CRUX", ny(d, 15, 59)) == bars[-1]
    assert market.bar_at("CRUX", ny(d, 16, 0)) is None
    assert market.bar_at("CRUX", ny(d, 9, 29)) is None


# -- no look-ahead -------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(day=st.sampled_from(WEEK), seconds=st.integers(-3600, 7 * 3600))
def test_last_price_is_last_finished_bar(
    market: Market, cal: MarketCalendar, day: dt.date, seconds: int
) -> None:
    t = ny(day, 9, 30) + dt.timedelta(seconds=seconds)
    finished = [b for b in market.minute_bars("ACME", day) if b.t + dt.timedelta(minutes=1) <= t]
    if finished:
        assert market.last_price("ACME", t) == finished[-1].c
    else:
        prev = market.daily_bar("ACME", cal.sessions_before(day, 1)[0].date)
        assert prev is not None
        assert market.last_price("ACME", t) == prev.c


def test_last_price_unaffected_by_later_changes(cal: MarketCalendar) -> None:
    """Rewriting the path after t (a scripted 14:00-15:00 rally) leaves every price up to t alone."""
    d = WEEK[1]
    rally = Scenario("late-rally", "", (Event("trend", "ACME", d, 20.0, dt.time(14), dt.time(15)),))
    plain, changed = Market(cal, seed=11), Market(cal, seed=11, scenario=rally)
    for minute in range(0, 271, 7):
        t = ny(d, 9, 30) + dt.timedelta(minutes=minute)
        assert plain.last_price("ACME", t) == changed.last_price("ACME", t)
    later = ny(d, 15, 0)
    assert changed.last_price("ACME", later) > plain.last_price("ACME", later) * 1.15


def test_last_price_outside_session_is_that_days_close(market: Market) -> None:
    friday = market.daily_bar("ACME", dt.date(2026, 11, 20))
    assert friday is not None
    assert market.last_price("ACME", ny(dt.date(2026, 11, 21), 12)) == friday.c
    assert market.last_price("ACME", ny(dt.date(2026, 11, 20), 16)) == friday.c
    assert market.last_price("ACME", ny(dt.date(2026, 11, 23), 9, 30)) == friday.c


# -- universe ------------------------------------------------------------------------------


def test_default_symbols_shape() -> None:
    syms = default_symbols()
    assert 45 <= len(syms) <= 55
    names = [s.symbol for s in syms]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[A-Z]{3,4}", n) for n in names)
    assert all(5 <= s.base_price <= 400 for s in syms)
    assert {s.exchange for s in syms} == {"NASDAQ", "NYSE"}
    dollars = [s.base_price * s.avg_daily_volume for s in syms]
    above = sum(x > 50e6 for x in dollars)
    assert 30 <= above <= 40 and len(syms) - above >= 10
    assert all(x > 300e6 for x in dollars[:5])  # the first few are liquid
    assert default_symbols() == syms


def test_dollar_volume_on_both_sides_of_50m(market: Market, cal: MarketCalendar) -> None:
    days = cal.sessions_before(dt.date(2026, 11, 23), 20)
    avg: dict[str, float] = {}
    for spec in market.symbols:
        bars = [market.daily_bar(spec.symbol, s.date) for s in days]
        avg[spec.symbol] = sum(b.c * b.v for b in bars if b is not None) / len(bars)
    above = [s for s, x in avg.items() if x > 50e6]
    below = [s for s, x in avg.items() if x < 50e6]
    assert len(above) >= 25 and len(below) >= 8
    assert {"ACME", "BOLT", "CRUX", "DYNO"} <= set(above)


def test_spec_lookup(market: Market) -> None:
    assert market.spec("ACME").name.startswith("Acme")
    with pytest.raises(KeyError, match="NOPE"):
        market.spec("NOPE")
    with pytest.raises(KeyError, match="NOPE"):
        market.minute_bars("NOPE", WEEK[0])


def test_scenario_for_unknown_symbol_or_closed_day_rejected(cal: MarketCalendar) -> None:
    bad_symbol = Scenario("x", "", (Event("flat", "NOPE", WEEK[0]),))
    with pytest.raises(ValueError, match="NOPE"):
        Market(cal, 1, bad_symbol)
    holiday = Scenario("x", "", (Event("flat", "ACME", dt.date(2026, 11, 26)),))
    with pytest.raises(ValueError, match="2026-11-26"):
        Market(cal, 1, holiday)


def test_halt_through_close_closes_at_last_bar(cal: MarketCalendar) -> None:
    d = WEEK[1]
    halt = Scenario("x", "", (Event("halt", "ACME", d, None, dt.time(15), dt.time(16)),))
    m = Market(cal, 5, halt)
    bars = m.minute_bars("ACME", d)
    daily = m.daily_bar("ACME", d)
    assert len(bars) == 330 and daily is not None
    assert daily.c == bars[-1].c
    assert m.last_price("ACME", ny(d, 17)) == bars[-1].c
    assert m.is_halted("ACME", ny(d, 15, 59)) and not m.is_halted("ACME", ny(d, 16))
