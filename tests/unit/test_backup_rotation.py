"""Backup rotation: which dumps to keep is a pure function of their times (7 daily, 4 weekly, 6 monthly)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from catalyst.backup import backup_name, parse_backup_name, select_keep

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
stamps = st.lists(
    st.integers(min_value=0, max_value=3 * 365 * 24 * 60).map(lambda m: EPOCH + timedelta(minutes=m)),
    max_size=250,
)


def newest_of_recent_buckets(times: set[datetime], key: Callable[[datetime], Hashable], count: int) -> set[datetime]:
    groups: dict[Hashable, list[datetime]] = {}
    for t in times:
        groups.setdefault(key(t), []).append(t)
    recent = sorted(groups, key=lambda k: max(groups[k]), reverse=True)[:count]
    return {max(groups[k]) for k in recent}


def day(t: datetime) -> Hashable:
    return t.date()


def week(t: datetime) -> Hashable:
    return t.isocalendar()[:2]


def month(t: datetime) -> Hashable:
    return (t.year, t.month)


@settings(max_examples=300, deadline=None)
@given(stamps)
def test_keeps_exactly_the_newest_7_days_4_weeks_6_months(times: list[datetime]) -> None:
    unique = set(times)
    kept = select_keep(times)
    expected = (
        newest_of_recent_buckets(unique, day, 7)
        | newest_of_recent_buckets(unique, week, 4)
        | newest_of_recent_buckets(unique, month, 6)
    )
    assert kept == expected
    assert kept <= unique
    assert len(kept) <= 7 + 4 + 6
    if unique:
        assert max(unique) in kept, "never delete the newest backup"
        # every one of the newest 7 days (with a backup) keeps its newest backup
        assert len({t.date() for t in kept}) >= min(7, len({t.date() for t in unique}))
    # pruning is stable: rotating what is left deletes nothing more
    assert select_keep(kept) == kept


@settings(max_examples=100, deadline=None)
@given(stamps, st.integers(min_value=0, max_value=10), st.integers(min_value=0, max_value=10),
       st.integers(min_value=0, max_value=10))
def test_newest_is_kept_whatever_the_counts(times: list[datetime], d: int, w: int, m: int) -> None:
    kept = select_keep(times, daily=d, weekly=w, monthly=m)
    if times:
        assert max(times) in kept
    assert len(kept) <= max(1, d + w + m)


def test_a_year_of_daily_backups() -> None:
    times = [datetime(2026, 1, 1, 22, tzinfo=UTC) + timedelta(days=i) for i in range(365)]
    kept = sorted(select_keep(times), reverse=True)
    newest = times[-1]  # 2026-12-31 (Thursday)
    assert kept[:7] == [newest - timedelta(days=i) for i in range(7)]
    # weeks: the newest of ISO weeks 53 (Dec 28-31), 52, 51, 50 -> Sundays Dec 27, 20, 13 and the 31st
    assert {datetime(2026, 12, d, 22, tzinfo=UTC) for d in (27, 20, 13)} <= set(kept)
    # months: the last day of Dec..Jul
    for mo, last in ((11, 30), (10, 31), (9, 30), (8, 31), (7, 31)):
        assert datetime(2026, mo, last, 22, tzinfo=UTC) in kept
    assert datetime(2026, 6, 30, 22, tzinfo=UTC) not in kept
    assert len(kept) == 7 + 2 + 5  # Dec 27 is both daily and weekly


def test_several_backups_a_day_keep_the_newest_of_the_day() -> None:
    base = datetime(2026, 3, 2, 10, tzinfo=UTC)
    times = [base + timedelta(hours=h) for h in range(5)]
    assert select_keep(times) == {times[-1]}
    assert select_keep([]) == set()


def test_names_round_trip() -> None:
    at = datetime(2026, 3, 8, 6, 30, 5, tzinfo=UTC)
    assert backup_name(at) == "catalyst-20260308-063005.dump"
    assert parse_backup_name(backup_name(at)) == at
    for bad in ("catalyst-20260308-063005.dump.sha256", "catalyst-20261340-000000.dump", "x.dump",
                ".tmp-abc.dump", "pre-restore-20260308-063005.dump"):
        assert parse_backup_name(bad) is None
