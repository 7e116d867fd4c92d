"""Scenarios: strict loading, packaged files, and each event kind's effect on the market."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalyst_sim.calendar import NY, MarketCalendar
from catalyst_sim.market import Market, default_symbols
from catalyst_sim.scenario import Event, Scenario, ScenarioError, available_scenarios, load_scenario

PACKAGED = ["gap-up", "gap-down-stop", "target-hit", "halt", "flat-day"]  # one event in the week of 2026-11-23
DEMO = "demo-lifecycle"  # catalyst demo's market: movers on every session it trades
SEED = 2026


@pytest.fixture(scope="module")
def cal() -> MarketCalendar:
    return MarketCalendar(dt.date(2026, 6, 1), dt.date(2027, 3, 31))


@pytest.fixture(scope="module")
def plain(cal: MarketCalendar) -> Market:
    return Market(cal, SEED)


def at(d: dt.date, t: dt.time) -> dt.datetime:
    return dt.datetime.combine(d, t, NY)


def only_event(name: str) -> Event:
    scenario = load_scenario(name)
    assert len(scenario.events) == 1
    return scenario.events[0]


# -- packaged files ------------------------------------------------------------------------


def test_packaged_scenarios_present() -> None:
    assert sorted([*PACKAGED, DEMO]) == available_scenarios()


@pytest.mark.parametrize("name", PACKAGED)
def test_packaged_scenario_is_well_formed(name: str, cal: MarketCalendar) -> None:
    scenario = load_scenario(name)
    assert scenario.name == name and scenario.description
    liquid = {s.symbol for s in default_symbols()[:8]}
    for ev in scenario.events:
        assert ev.symbol in liquid
        assert dt.date(2026, 11, 23) <= ev.date <= dt.date(2026, 11, 27)
        assert cal.session_on(ev.date) is not None
    Market(cal, SEED, scenario)  # accepted by the market


def test_the_demo_scenario_moves_liquid_names_on_sessions(cal: MarketCalendar) -> None:
    scenario = load_scenario(DEMO)
    assert scenario.description and scenario.events
    for ev in scenario.events:
        assert ev.kind in ("gap", "trend") and cal.session_on(ev.date) is not None
        assert ev.symbol in {s.symbol for s in default_symbols()}
    Market(cal, SEED, scenario)


def test_load_by_path_equals_by_name() -> None:
    path = Path(__file__).parents[2] / "agent" / "catalyst_sim" / "scenarios" / "halt.yml"
    assert load_scenario(str(path)) == load_scenario("halt")


def test_unknown_name_lists_available() -> None:
    with pytest.raises(ScenarioError, match="gap-down-stop"):
        load_scenario("no-such-scenario")


def test_missing_file() -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario("/nonexistent/dir/x.yml")


def test_empty_scenario(cal: MarketCalendar, plain: Market) -> None:
    empty = Scenario.empty()
    assert empty.events == ()
    d = dt.date(2026, 11, 24)
    assert repr(Market(cal, SEED, empty).minute_bars("ACME", d)) == repr(plain.minute_bars("ACME", d))


# -- effects -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gap-up", "gap-down-stop"])
def test_gap_effect(name: str, cal: MarketCalendar) -> None:
    ev = only_event(name)
    assert ev.pct is not None
    m = Market(cal, SEED, load_scenario(name))
    prev = m.daily_bar(ev.symbol, cal.sessions_before(ev.date, 1)[0].date)
    day = m.daily_bar(ev.symbol, ev.date)
    assert prev is not None and day is not None
    assert abs((day.o / prev.c - 1) * 100 - ev.pct) < 0.5
    before_open = at(ev.date, dt.time(9, 30))
    assert m.last_price(ev.symbol, before_open) == prev.c
    assert (
        m.last_price(ev.symbol, before_open + dt.timedelta(minutes=1))
        == m.minute_bars(ev.symbol, ev.date)[0].c
    )


def test_gap_carries_into_the_next_day(cal: MarketCalendar, plain: Market) -> None:
    ev = only_event("gap-down-stop")
    m = Market(cal, SEED, load_scenario("gap-down-stop"))
    nxt = cal.sessions_between(ev.date + dt.timedelta(days=1), ev.date + dt.timedelta(days=7))[0].date
    gapped, base = m.daily_bar(ev.symbol, ev.date), plain.daily_bar(ev.symbol, ev.date)
    gapped_next, base_next = m.daily_bar(ev.symbol, nxt), plain.daily_bar(ev.symbol, nxt)
    assert gapped and base and gapped_next and base_next
    assert gapped_next.o < base_next.o * 0.95
    # same overnight noise, different starting close
    assert gapped_next.o / gapped.c == pytest.approx(base_next.o / base.c, abs=2e-4)


def test_halt_effect(cal: MarketCalendar) -> None:
    ev = only_event("halt")
    assert ev.start == dt.time(10, 15) and ev.end == dt.time(10, 45)
    m = Market(cal, SEED, load_scenario("halt"))
    bars = m.minute_bars(ev.symbol, ev.date)
    assert len(bars) == 390 - 30
    last_before = m.bar_at(ev.symbol, at(ev.date, dt.time(10, 14)))
    assert last_before is not None
    for minute in range(30):
        t = at(ev.date, ev.start) + dt.timedelta(minutes=minute, seconds=20)
        assert m.bar_at(ev.symbol, t) is None
        assert m.is_halted(ev.symbol, t)
        assert m.last_price(ev.symbol, t) == last_before.c
    assert not m.is_halted(ev.symbol, at(ev.date, dt.time(10, 14, 59)))
    assert not m.is_halted(ev.symbol, at(ev.date, dt.time(10, 45)))
    assert m.bar_at(ev.symbol, at(ev.date, dt.time(10, 45))) is not None
    assert not m.is_halted("ACME", at(ev.date, dt.time(10, 30)))
    daily = m.daily_bar(ev.symbol, ev.date)
    assert daily is not None and daily.v == sum(b.v for b in bars)


def test_trend_effect(cal: MarketCalendar, plain: Market) -> None:
    ev = only_event("target-hit")
    assert ev.pct is not None and ev.start is not None and ev.end is not None
    m = Market(cal, SEED, load_scenario("target-hit"))
    begin, finish = at(ev.date, ev.start), at(ev.date, ev.end)

    def move(market: Market) -> float:
        return market.last_price(ev.symbol, finish) / market.last_price(ev.symbol, begin)

    assert move(m) / move(plain) == pytest.approx(1 + ev.pct / 100, abs=5e-4)
    assert m.last_price(ev.symbol, begin) == plain.last_price(ev.symbol, begin)
    # the rally is spread over the window: halfway through, about half of it is in
    halfway = begin + (finish - begin) / 2
    half = m.last_price(ev.symbol, halfway) / plain.last_price(ev.symbol, halfway)
    assert half == pytest.approx(math.sqrt(1 + ev.pct / 100), abs=1e-3)


def test_flat_effect(cal: MarketCalendar, plain: Market) -> None:
    ev = only_event("flat-day")
    m = Market(cal, SEED, load_scenario("flat-day"))

    def intraday_sd(market: Market) -> float:
        closes = [b.c for b in market.minute_bars(ev.symbol, ev.date)]
        rets = [math.log(b / a) for a, b in itertools.pairwise(closes)]
        mean = sum(rets) / len(rets)
        return math.sqrt(sum((r - mean) ** 2 for r in rets) / len(rets))

    assert intraday_sd(m) < 0.12 * intraday_sd(plain)
    day = m.daily_bar(ev.symbol, ev.date)
    assert day is not None and (day.h - day.l) / day.o < 0.005


# -- malformed files -----------------------------------------------------------------------

_GOOD_EVENT = "{kind: gap, symbol: ACME, date: 2026-11-24, pct: -8.0}"


@pytest.mark.parametrize(
    ("events", "field"),
    [
        ("[{kind: crash, symbol: ACME, date: 2026-11-24}]", "kind"),
        ("[{symbol: ACME, date: 2026-11-24, pct: 1}]", "kind"),
        ("[{kind: gap, symbol: acme, date: 2026-11-24, pct: 1}]", "symbol"),
        ("[{kind: gap, symbol: ACME, date: 2026-13-40, pct: 1}]", "date"),
        ("[{kind: gap, symbol: ACME, date: tomorrow, pct: 1}]", "date"),
        ("[{kind: gap, symbol: ACME, date: 2026-11-24, pct: lots}]", "pct"),
        ("[{kind: gap, symbol: ACME, date: 2026-11-24, pct: -100}]", "pct"),
        ("[{kind: gap, symbol: ACME, date: 2026-11-24}]", "pct"),
        ("[{kind: gap, symbol: ACME, date: 2026-11-24, pct: 1, from: '10:00'}]", "from"),
        ("[{kind: halt, symbol: ACME, date: 2026-11-24, from: 10:00, to: '11:00'}]", "from"),
        ("[{kind: halt, symbol: ACME, date: 2026-11-24, from: '10:00', to: '09:45'}]", "to"),
        ("[{kind: halt, symbol: ACME, date: 2026-11-24, from: '08:00', to: '09:45'}]", "from"),
        ("[{kind: halt, symbol: ACME, date: 2026-11-24, from: '10:00'}]", "to"),
        ("[{kind: trend, symbol: ACME, date: 2026-11-24, pct: 2, from: '10:00', to: '25:00'}]", "to"),
        ("[{kind: flat, symbol: ACME, date: 2026-11-24, colour: red}]", "colour"),
    ],
)
def test_malformed_event_names_file_index_and_field(tmp_path: Path, events: str, field: str) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(f"name: bad\nevents:\n  - {_GOOD_EVENT}\n  - {events[1:-1]}\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    msg = str(info.value)
    assert str(path) in msg
    assert "event #1" in msg
    assert f"'{field}'" in msg
    assert "expected" in msg


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("- just\n- a list\n", "mapping"),
        ("events: []\n", "'name'"),
        ("name: x\nevents: {kind: gap}\n", "'events'"),
        ("name: x\nevents:\n  - 42\n", "event #0"),
        ("name: x\nevnts: []\n", "evnts"),
        ("name: x\nevents: [unclosed\n", "not valid YAML"),
    ],
)
def test_malformed_top_level(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=None) as info:
        load_scenario(str(path))
    assert needle in str(info.value) and str(path) in str(info.value)


def test_scenario_error_is_value_error() -> None:
    assert issubclass(ScenarioError, ValueError)


# -- from_dict round trip ------------------------------------------------------------------

_events = st.one_of(
    st.builds(
        lambda s, d, p: {"kind": "gap", "symbol": s, "date": d, "pct": p},
        st.sampled_from(["ACME", "BOLT"]),
        st.dates(dt.date(2026, 6, 1), dt.date(2027, 3, 31)),
        st.floats(-99.0, 500.0, allow_nan=False),
    ),
    st.builds(
        lambda s, d, a, b: {"kind": "halt", "symbol": s, "date": d.isoformat(), "from": a, "to": b},
        st.sampled_from(["CRUX"]),
        st.dates(dt.date(2026, 6, 1), dt.date(2027, 3, 31)),
        st.just("09:30"),
        st.sampled_from(["09:31", "12:00", "16:00"]),
    ),
    st.builds(
        lambda d: {"kind": "flat", "symbol": "DYNO", "date": d},
        st.dates(dt.date(2026, 6, 1), dt.date(2027, 3, 31)),
    ),
)


@settings(max_examples=100, deadline=None)
@given(raw=st.lists(_events, max_size=6))
def test_from_dict_accepts_valid_events(raw: list[dict[str, object]]) -> None:
    scenario = Scenario.from_dict({"name": "gen", "events": raw})
    assert len(scenario.events) == len(raw)
    for ev, src in zip(scenario.events, raw, strict=True):
        assert ev.kind == src["kind"] and ev.symbol == src["symbol"]
        assert ev.date.isoformat() == str(src["date"])
        if ev.kind == "gap":
            assert ev.pct == src["pct"]
        if ev.kind == "halt":
            assert ev.start is not None and ev.end is not None and ev.start < ev.end
    assert scenario.symbols == {e.symbol for e in scenario.events}
