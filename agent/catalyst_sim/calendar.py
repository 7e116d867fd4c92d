"""The NYSE trading calendar as plain Python objects.

The schedule comes from ``exchange_calendars`` (XNYS) once, at construction; after that every
lookup is a ``bisect`` over sorted lists of floats and dates, so the simulator's hot paths never
touch pandas.
"""

from __future__ import annotations

import bisect
import datetime
import functools
import warnings
import zoneinfo
from dataclasses import dataclass

NY = zoneinfo.ZoneInfo("America/New_York")
UTC = datetime.UTC


@dataclass(frozen=True, slots=True)
class Session:
    """One regular trading session: its date and its open and close in America/New_York."""

    date: datetime.date
    open: datetime.datetime
    close: datetime.datetime


@functools.lru_cache(maxsize=8)
def _xnys_schedule(start: datetime.date, end: datetime.date) -> tuple[tuple[datetime.date, int, int], ...]:
    """Read the XNYS schedule between two dates as (date, open epoch s, close epoch s) tuples.

    Cached so that tests and servers building several calendars over one range pay pandas once.
    """
    import exchange_calendars  # imported lazily: pandas is slow to import and only needed here

    with warnings.catch_warnings():
        # exchange_calendars 4.13 trips a pandas deprecation inside its own code; nothing to act on here.
        warnings.filterwarnings("ignore", message="Series.values returning", category=DeprecationWarning)
        cal = exchange_calendars.get_calendar("XNYS", start=start.isoformat(), end=end.isoformat())
        sched = cal.schedule
    rows: list[tuple[datetime.date, int, int]] = []
    for label, o, c in zip(sched.index, sched["open"], sched["close"], strict=True):
        rows.append((label.date(), int(o.timestamp()), int(c.timestamp())))
    return tuple(rows)


def aware_ts(t: datetime.datetime) -> float:
    """Epoch seconds of an aware datetime; naive ones are rejected: their meaning depends on the
    host's time zone."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"datetime {t.isoformat()} must be timezone-aware")
    return t.timestamp()


class MarketCalendar:
    """XNYS sessions between ``start`` and ``end`` (inclusive), with Alpaca-style clock queries.

    Any question about a date or instant outside [start, end] raises ``ValueError`` rather than
    silently answering "closed", so a too-short calendar shows up as an error, not as a bug.
    """

    def __init__(self, start: datetime.date, end: datetime.date) -> None:
        if end < start:
            raise ValueError(f"calendar end {end} is before start {start}")
        rows = _xnys_schedule(start, end)
        if not rows:
            raise ValueError(f"no XNYS sessions between {start} and {end}")
        self._start = start
        self._end = end
        self._sessions = tuple(
            Session(d, datetime.datetime.fromtimestamp(o, NY), datetime.datetime.fromtimestamp(c, NY))
            for d, o, c in rows
        )
        self._dates = [d for d, _, _ in rows]
        self._opens = [float(o) for _, o, _ in rows]
        self._closes = [float(c) for _, _, c in rows]
        self._index = {d: i for i, d in enumerate(self._dates)}
        self._range_lo = datetime.datetime.combine(start, datetime.time(), NY).timestamp()
        day_after = end + datetime.timedelta(days=1)
        self._range_hi_ts = datetime.datetime.combine(day_after, datetime.time(), NY).timestamp()

    # -- plain accessors -------------------------------------------------------------------

    @property
    def start(self) -> datetime.date:
        """First date covered (not necessarily a session)."""
        return self._start

    @property
    def end(self) -> datetime.date:
        """Last date covered (not necessarily a session)."""
        return self._end

    @property
    def sessions(self) -> tuple[Session, ...]:
        """All sessions in the range, oldest first."""
        return self._sessions

    # -- range checks ----------------------------------------------------------------------

    def _check_date(self, d: datetime.date) -> None:
        """Raise if ``d`` is outside the calendar's range."""
        if not self._start <= d <= self._end:
            raise ValueError(f"date {d} is outside the market calendar's range {self._start}..{self._end}")

    def _ts(self, t: datetime.datetime) -> float:
        """Epoch seconds of an aware datetime inside the calendar's range."""
        ts = aware_ts(t)
        if not self._range_lo <= ts < self._range_hi_ts:
            raise ValueError(
                f"time {t.isoformat()} is outside the market calendar's range {self._start}..{self._end}"
            )
        return ts

    # -- lookups ---------------------------------------------------------------------------

    def session_on(self, d: datetime.date) -> Session | None:
        """The session on date ``d``, or None on weekends and holidays."""
        self._check_date(d)
        i = self._index.get(d)
        return None if i is None else self._sessions[i]

    def index_of(self, d: datetime.date) -> int:
        """Position of date ``d`` in ``sessions``; ValueError if ``d`` is not a session."""
        i = self._index.get(d)
        if i is None:
            self._check_date(d)
            raise ValueError(f"{d} is not an XNYS trading session")
        return i

    def session_index_at(self, t: datetime.datetime) -> int | None:
        """Index of the session with open <= t < close, or None when the market is closed."""
        ts = self._ts(t)
        i = bisect.bisect_right(self._opens, ts) - 1
        if i >= 0 and ts < self._closes[i]:
            return i
        return None

    def session_at(self, t: datetime.datetime) -> Session | None:
        """The session whose open <= t < close, or None when the market is closed at ``t``."""
        i = self.session_index_at(t)
        return None if i is None else self._sessions[i]

    def is_open(self, t: datetime.datetime) -> bool:
        """Whether the regular session is in progress at ``t``."""
        return self.session_index_at(t) is not None

    def next_open(self, t: datetime.datetime) -> datetime.datetime:
        """The first session open strictly after ``t`` (while open, that is the next day's open)."""
        ts = self._ts(t)
        i = bisect.bisect_right(self._opens, ts)
        if i >= len(self._sessions):
            raise ValueError(f"no session opens after {t.isoformat()} within the calendar (ends {self._end})")
        return self._sessions[i].open

    def next_close(self, t: datetime.datetime) -> datetime.datetime:
        """This session's close if open at ``t``, else the close of the next session.

        Sessions never overlap, so both cases are "the first close strictly after t".
        """
        ts = self._ts(t)
        i = bisect.bisect_right(self._closes, ts)
        if i >= len(self._sessions):
            raise ValueError(
                f"no session closes after {t.isoformat()} within the calendar (ends {self._end})"
            )
        return self._sessions[i].close

    def sessions_between(self, start: datetime.date, end: datetime.date) -> list[Session]:
        """Sessions with start <= date <= end, oldest first."""
        self._check_date(start)
        self._check_date(end)
        lo = bisect.bisect_left(self._dates, start)
        hi = bisect.bisect_right(self._dates, end)
        return list(self._sessions[lo:hi])

    def sessions_before(self, d: datetime.date, n: int) -> list[Session]:
        """The ``n`` sessions strictly before ``d``, oldest first."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        self._check_date(d)
        hi = bisect.bisect_left(self._dates, d)
        if hi < n:
            raise ValueError(
                f"only {hi} sessions before {d} in the calendar (starts {self._start}); asked for {n}"
            )
        return list(self._sessions[hi - n : hi])
