"""MarketCalendar: XNYS sessions as plain Python, Alpaca clock semantics, range errors."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalyst_sim.calendar import NY, MarketCalendar, Session

START, END = dt.date(2026, 6, 1), dt.date(2027, 3, 31)


@pytest.fixture(scope="module")
def cal() -> MarketCalendar:
    return MarketCalendar(START, END)


def ny(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=NY)


def test_thanksgiving_is_not_a_session(cal: MarketCalendar) -> None:
    assert cal.session_on(dt.date(2026, 11, 26)) is None
    assert not cal.is_open(ny(2026, 11, 26, 12))


def test_day_after_thanksgiving_closes_early(cal: MarketCalendar) -> None:
    s = cal.session_on(dt.date(2026, 11, 27))
    assert s is not None
    assert s.open == ny(2026, 11, 27, 9, 30)
    assert s.close == ny(2026, 11, 27, 13, 0)
    assert not cal.is_open(ny(2026, 11, 27, 13, 30))


def test_regular_session_times(cal: MarketCalendar) -> None:
    s = cal.session_on(dt.date(2026, 11, 23))
    assert s is not None
    assert (s.open.hour, s.open.minute, s.close.hour, s.close.minute) == (9, 30, 16, 0)
    assert s.open.tzinfo is NY


def test_sessions_are_plain_python(cal: MarketCalendar) -> None:
    s = cal.sessions[0]
    assert type(s) is Session
    assert type(s.date) is dt.date
    assert type(s.open) is dt.datetime and type(s.close) is dt.datetime
    assert [x.date for x in cal.sessions] == sorted(x.date for x in cal.sessions)
    assert cal.sessions[0].date == dt.date(2026, 6, 1)
    assert cal.sessions[-1].date == dt.date(2027, 3, 31)


def test_next_open_from_friday_evening_is_monday(cal: MarketCalendar) -> None:
    assert cal.next_open(ny(2026, 11, 20, 18)) == ny(2026, 11, 23, 9, 30)


def test_next_open_while_open_is_next_day(cal: MarketCalendar) -> None:
    assert cal.next_open(ny(2026, 11, 23, 9, 30)) == ny(2026, 11, 24, 9, 30)
    assert cal.next_open(ny(2026, 11, 25, 12)) == ny(2026, 11, 27, 9, 30)  # skips Thanksgiving


def test_next_open_before_open_is_today(cal: MarketCalendar) -> None:
    assert cal.next_open(ny(2026, 11, 24, 9, 29)) == ny(2026, 11, 24, 9, 30)


def test_next_close(cal: MarketCalendar) -> None:
    assert cal.next_close(ny(2026, 11, 27, 10)) == ny(2026, 11, 27, 13)
    assert cal.next_close(ny(2026, 11, 24, 8)) == ny(2026, 11, 24, 16)
    assert cal.next_close(ny(2026, 11, 20, 16)) == ny(2026, 11, 23, 16)  # at the close: closed


def test_open_and_close_boundaries(cal: MarketCalendar) -> None:
    assert cal.is_open(ny(2026, 11, 23, 9, 30))
    assert not cal.is_open(ny(2026, 11, 23, 9, 29))
    assert not cal.is_open(ny(2026, 11, 23, 16, 0))
    assert cal.session_at(ny(2026, 11, 23, 15, 59)) == cal.session_on(dt.date(2026, 11, 23))
    assert cal.session_at(ny(2026, 11, 22, 12)) is None  # Sunday


def test_dst_transition_keeps_local_open(cal: MarketCalendar) -> None:
    before = cal.session_on(dt.date(2026, 10, 30))
    after = cal.session_on(dt.date(2026, 11, 2))
    assert before is not None and after is not None
    assert (after.open.hour, after.open.minute) == (9, 30)
    assert before.open.astimezone(dt.UTC).hour == 13
    assert after.open.astimezone(dt.UTC).hour == 14
    assert cal.next_open(ny(2026, 10, 30, 17)) == ny(2026, 11, 2, 9, 30)


def test_sessions_between_is_inclusive(cal: MarketCalendar) -> None:
    week = cal.sessions_between(dt.date(2026, 11, 23), dt.date(2026, 11, 27))
    assert [s.date.day for s in week] == [23, 24, 25, 27]
    assert cal.sessions_between(dt.date(2026, 11, 28), dt.date(2026, 11, 29)) == []


def test_sessions_before(cal: MarketCalendar) -> None:
    got = cal.sessions_before(dt.date(2026, 11, 27), 3)
    assert [s.date.day for s in got] == [23, 24, 25]
    assert cal.sessions_before(dt.date(2026, 11, 26), 1)[0].date == dt.date(2026, 11, 25)
    assert cal.sessions_before(dt.date(2026, 11, 23), 0) == []


def test_index_of(cal: MarketCalendar) -> None:
    i = cal.index_of(dt.date(2026, 11, 27))
    assert cal.sessions[i].date == dt.date(2026, 11, 27)
    assert cal.index_of(START) == 0
    with pytest.raises(ValueError, match="2026-11-26"):
        cal.index_of(dt.date(2026, 11, 26))


def test_out_of_range_raises(cal: MarketCalendar) -> None:
    with pytest.raises(ValueError, match="outside"):
        cal.session_on(dt.date(2027, 4, 1))
    with pytest.raises(ValueError, match="outside"):
        cal.is_open(ny(2026, 5, 29, 12))
    with pytest.raises(ValueError, match="only 0 sessions"):
        cal.sessions_before(START, 1)
    with pytest.raises(ValueError, match="no session opens after"):
        cal.next_open(ny(2027, 3, 31, 12))
    with pytest.raises(ValueError, match="outside"):
        cal.sessions_between(dt.date(2026, 5, 1), dt.date(2026, 6, 5))


def test_naive_datetime_rejected(cal: MarketCalendar) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.is_open(dt.datetime(2026, 11, 23, 12))


def test_end_before_start_rejected() -> None:
    with pytest.raises(ValueError, match="before start"):
        MarketCalendar(END, START)


_instants = st.datetimes(
    min_value=dt.datetime(2026, 6, 1), max_value=dt.datetime(2027, 3, 25), timezones=st.just(NY)
)


@settings(max_examples=300, deadline=None)
@given(t=_instants)
def test_clock_properties(cal: MarketCalendar, t: dt.datetime) -> None:
    session = cal.session_at(t)
    assert cal.is_open(t) == (session is not None)
    nxt_open = cal.next_open(t)
    nxt_close = cal.next_close(t)
    assert nxt_open > t and nxt_close > t
    assert cal.session_on(nxt_open.date()) is not None
    if session is not None:
        assert session.open <= t < session.close
        assert nxt_close == session.close
        assert nxt_open.date() > session.date
    else:
        assert nxt_open < nxt_close  # closed: the next session opens before it closes
