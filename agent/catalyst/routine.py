"""The procedure's daily routines (PRIMARY-004 section 5) as one command each.

Morning (before the open): health check, yesterday's trades, ERROR/CRITICAL lines in the last 12 hours of
the trading log, the mode is what it should be (paper unless a passed go-live record exists, then live),
and the limits in force match the phase.

Evening (after the close): the daily report (written to the report directory), the trade review, the
cumulative 7-day P&L (the procedure's second SQL, computed), and the backup's status.

Each routine ends with ONE verdict line (``MORNING CHECK: OK`` or ``MORNING CHECK: ATTENTION — 2 items``),
sends ONE heartbeat to the ``report`` check (success when OK, fail otherwise), and writes its output to
``{mode}-{morning|evening}-YYYYMMDD.txt`` in the report directory. A source that cannot be read (database
down, log missing) is an item needing attention, never a crash: the routine still writes its file and pings.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from .backup import STATE_FILE
from .broker.models import NY
from .metrics import trade_of

if TYPE_CHECKING:
    from .config import Config
    from .phases import PhaseTable
    from .store.repo import Store

__all__ = [
    "BACKUP_FILE",
    "LOG_WINDOW",
    "CheckItem",
    "Pinger",
    "RoutineResult",
    "State",
    "evening",
    "log_problems",
    "morning",
    "read_backup_status",
]

State = Literal["ok", "warn", "fail"]
#: Written in the state directory by the backup job.
BACKUP_FILE: Final = STATE_FILE  # written by catalyst.backup
#: How far back the morning check reads the trading log (the procedure's ``logs --since 12h``).
LOG_WINDOW: Final = timedelta(hours=12)
MAX_BACKUP_AGE: Final = timedelta(hours=26)
_MAX_LOG_LINES_SHOWN: Final = 20
_LEVEL_RE: Final = re.compile(r"\b(ERROR|CRITICAL)\b")


class Pinger(Protocol):
    """What the routines need from :class:`catalyst.heartbeat.Heartbeat`."""

    def success(self, check: str, rid: str | None = None, body: str = "") -> bool: ...
    def fail(self, check: str, rid: str | None = None, body: str = "") -> bool: ...


@dataclass(frozen=True)
class CheckItem:
    """One step of a routine: ok, warn or fail (warn and fail both need the trader's attention)."""

    name: str
    state: State
    detail: str
    lines: tuple[str, ...] = ()

    def render(self) -> list[str]:
        mark = {"ok": "✅", "warn": "⚠️", "fail": "❌"}[self.state]
        return [f"{mark} {self.name}: {self.detail}", *(f"    {line}" for line in self.lines)]


@dataclass(frozen=True)
class RoutineResult:
    routine: str  # "morning" | "evening"
    mode: str
    at: datetime
    items: tuple[CheckItem, ...]
    path: Path | None = None  # the routine's own file in report_dir
    reports: tuple[Path, ...] = ()  # report files written (evening)
    heartbeat_sent: bool = False
    errors: tuple[str, ...] = field(default=())  # problems writing the file

    @property
    def attention(self) -> tuple[CheckItem, ...]:
        return tuple(i for i in self.items if i.state != "ok")

    @property
    def ok(self) -> bool:
        return not self.attention

    @property
    def verdict(self) -> str:
        """``MORNING CHECK: OK`` or ``MORNING CHECK: ATTENTION — 2 items``."""
        label = f"{self.routine.upper()} CHECK"
        n = len(self.attention)
        return f"{label}: OK" if n == 0 else f"{label}: ATTENTION — {n} item{'s' if n != 1 else ''}"

    def render(self) -> str:
        day = self.at.astimezone(NY)
        out = [f"CATALYST {self.routine.upper()} ROUTINE — {self.mode} — {day:%Y-%m-%d %H:%M %Z}", ""]
        for item in self.items:
            out += item.render()
        out += ["", self.verdict]
        return "\n".join(out) + "\n"

    def as_dict(self) -> dict[str, Any]:
        return {
            "routine": self.routine, "mode": self.mode, "at": self.at.isoformat(), "ok": self.ok,
            "verdict": self.verdict,
            "items": [{"name": i.name, "state": i.state, "detail": i.detail, "lines": list(i.lines)}
                      for i in self.items],
            "path": str(self.path) if self.path else None, "reports": [str(p) for p in self.reports],
            "heartbeat_sent": self.heartbeat_sent, "errors": list(self.errors),
        }  # fmt: skip


StoreOpener = Callable[[], "Store"]


# ------------------------------------------------------------------------------------------ helpers


def _ny_day(now: datetime) -> date:
    return now.astimezone(NY).date()


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    return datetime.combine(day, time(0), tzinfo=NY), datetime.combine(day + timedelta(days=1), time(0), tzinfo=NY)


def _trade_line(row: Mapping[str, Any]) -> str:
    t = trade_of(row)
    r = t.realized_pnl / t.initial_risk if t.initial_risk else None
    return (
        f"{t.symbol} {row.get('direction') or 'long'} {t.qty:g} @ {t.entry_price:.2f} → {t.exit_price:.2f} "
        f"P&L {t.realized_pnl:+,.2f} R {'n/a' if r is None else f'{r:+.2f}'} ({t.exit_reason}; "
        f"{t.opened_at.astimezone(NY):%H:%M}–{t.closed_at.astimezone(NY):%H:%M})"
    )


def _summary(trades: Sequence[Mapping[str, Any]]) -> str:
    pnl = sum(float(r["realized_pnl"] or 0) for r in trades)
    wins = sum(1 for r in trades if float(r["realized_pnl"] or 0) > 0)
    return f"{len(trades)} trade(s), {wins} win(s), P&L {pnl:+,.2f}"


def _iter_log_lines(log_file: Path) -> Iterator[str]:
    """The rotated log (``.1``, if plain text) then the current one."""
    for path in (log_file.with_name(log_file.name + ".1"), log_file):
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                yield from fh
        except FileNotFoundError:
            continue


def _line_time(line: str) -> datetime | None:
    head = line.split(" ", 1)[0]
    if len(head) < 19 or not head[:4].isdigit():
        return None
    try:
        at = datetime.fromisoformat(head)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def log_problems(log_file: Path, now: datetime, since: timedelta = LOG_WINDOW) -> tuple[int, list[str]]:
    """ERROR and CRITICAL records of the trading log logged in ``(now - since, now]``.

    Lines start with an ISO timestamp (``2026-11-23T15:31:00+0000 ERROR catalyst.cycle ...``); lines without
    one (a traceback) belong to the record above them. Returns (count, the first lines of each record).
    Raises ``FileNotFoundError`` when neither the log nor its rotation exists.
    """
    if not log_file.exists() and not log_file.with_name(log_file.name + ".1").exists():
        raise FileNotFoundError(str(log_file))
    start = now - since
    found: list[str] = []
    for raw in _iter_log_lines(log_file):
        at = _line_time(raw)
        if at is None or not (start < at <= now):
            continue
        fields = raw.split(" ", 3)
        level = fields[1] if len(fields) > 1 else ""
        if level in ("ERROR", "CRITICAL") or (level not in ("INFO", "DEBUG", "WARNING") and _LEVEL_RE.search(raw)):
            found.append(raw.rstrip("\n"))
    return len(found), found


def read_backup_status(state_dir: Path, now: datetime) -> CheckItem:
    """The backup job's ``last-backup.json``: when it finished, whether it succeeded and was verified."""
    path = state_dir / BACKUP_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return CheckItem("database backup", "warn", f"no backup yet ({path} not found)")
    except (OSError, ValueError) as exc:
        return CheckItem("database backup", "fail", f"cannot read {path}: {exc}")
    if not isinstance(data, dict):
        return CheckItem("database backup", "fail", f"{path} is not a JSON object")
    stamp = next((data[k] for k in ("finished_at", "completed_at", "at", "timestamp", "created_at")
                  if isinstance(data.get(k), str)), None)  # fmt: skip
    at: datetime | None = None
    if stamp is not None:
        try:
            at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        except ValueError:
            at = None
    status = str(data.get("status") or data.get("outcome") or ("ok" if data.get("ok", True) else "failed")).lower()
    where = data.get("path") or data.get("file")
    lines = tuple(x for x in (f"file: {where}" if where else "",
                              f"verified: {data['verified']}" if "verified" in data else "") if x)  # fmt: skip
    if status not in ("ok", "success", "succeeded", "done", "verified"):
        return CheckItem("database backup", "fail", f"last backup {status}" + (f" at {stamp}" if stamp else ""), lines)
    if data.get("verified") is False:
        return CheckItem("database backup", "fail", "last backup was not verified (pg_restore --list failed)", lines)
    if at is None:
        return CheckItem("database backup", "warn", f"{path} has no readable finish time", lines)
    age = now - at
    hours = age.total_seconds() / 3600
    if age > MAX_BACKUP_AGE:
        return CheckItem(
            "database backup",
            "warn",
            f"last backup is {hours:.1f} h old (older than {MAX_BACKUP_AGE.total_seconds() / 3600:.0f} h)",
            lines,
        )
    return CheckItem("database backup", "ok", f"last backup {hours:.1f} h ago ({at.isoformat()})", lines)


def _health_item(config: Config, health: Callable[[Config], Mapping[str, Any]]) -> CheckItem:
    try:
        data = health(config)
    except Exception as exc:
        return CheckItem("health", "fail", f"health check failed to run: {type(exc).__name__}: {exc}")
    checks: Mapping[str, Mapping[str, Any]] = data.get("checks", {})
    failing = [f"{n}: {c.get('detail')}" for n, c in checks.items() if c.get("state") == "fail"]
    warns = [f"{n}: {c.get('detail')}" for n, c in checks.items() if c.get("state") == "warn"]
    halted = checks.get("halt", {}).get("state") == "warn"
    lines = tuple([f"FAIL {x}" for x in failing] + [f"warn {x}" for x in warns])
    if not data.get("healthy", False) or failing:
        return CheckItem("health", "fail", f"{len(failing)} check(s) failing", lines)
    if halted:
        return CheckItem("health", "warn", "healthy, but trading is HALTED", lines)
    return CheckItem(
        "health", "ok", f"healthy ({len(checks)} checks" + (f", {len(warns)} note(s))" if warns else ")"), lines
    )


def _default_health(config: Config) -> Mapping[str, Any]:
    from .status import gather_health

    return gather_health(config, skew_limit=config.clock_skew_max)


def _previous_session(store: Store, mode: str, today: date) -> date:
    """The last trading day before ``today`` (from the daily equity rows), else the calendar yesterday."""
    rows = store.daily_equity(mode=mode, since=today - timedelta(days=10))
    days = [r["date"] for r in rows if r["date"] < today]
    return days[-1] if days else today - timedelta(days=1)


def _mode_item(config: Config, store: Store) -> CheckItem:
    record = store.latest_go_live(passed_only=True)
    acknowledged = record is not None and bool(record.get("acknowledged_by"))
    expected = "live" if acknowledged else "paper"
    why = (
        f"a passed go-live record exists ({record['created_at']:%Y-%m-%d}, acknowledged by {record['acknowledged_by']})"
        if acknowledged and record is not None
        else "no passed go-live record"
    )
    problems = []
    if config.mode != expected:
        problems.append(f"ALPACA_MODE={config.mode} but {why}: it should be {expected}")
    if config.url_mode != config.mode:
        problems.append(f"ALPACA_BASE_URL points at the {config.url_mode} endpoint but ALPACA_MODE={config.mode}")
    if problems:
        return CheckItem("mode", "fail", "; ".join(problems))
    return CheckItem("mode", "ok", f"{config.mode} ({why})")


def _limits_item(config: Config, table: PhaseTable, store: Store) -> CheckItem:
    from .config import LimitsError
    from .status import phase_and_limits

    phase = store.current_phase()
    try:
        info = phase_and_limits(config, table, phase)
    except (LimitsError, KeyError) as exc:
        return CheckItem("limits", "fail", f"limits refused: {exc}")
    if info.get("limits") is None:
        return CheckItem("limits", "fail", str(info.get("note") or "no limits in force"))
    in_force: dict[str, Any] = dict(info["limits"])
    source = table.paper if info["phase"] == "paper" else table.get(str(info["phase"]))
    expected = source.limits.as_dict()
    shown = ", ".join(f"{k}={v:g}" for k, v in in_force.items())
    lines = [f"in force: {shown}"]
    state: State = "ok"
    detail = f"phase {info['phase']} (limits of {source.name}) match the phase table"
    if in_force != expected:
        tightened = ", ".join(f"{k}={in_force[k]:g} (phase {expected[k]:g})" for k in expected
                              if in_force.get(k) != expected[k])  # fmt: skip
        state, detail = "warn", f"phase {info['phase']}: tightened by the environment: {tightened}"
    last = store.last_cycle(mode=config.mode, finished_only=True)
    used = (last.get("detail") or {}).get("limits") if last is not None else None
    if isinstance(used, Mapping):
        if {k: float(v) for k, v in used.items()} != {k: float(v) for k, v in in_force.items()}:
            state = "fail"
            detail = f"the last cycle traded with different limits ({dict(used)}) than those in force ({shown})"
        else:
            lines.append("the last trading cycle used these limits")
    return CheckItem("limits", state, detail, tuple(lines))


def _equity_body(config: Config, store: Store | None, phase: str | None, note: str) -> str:
    from .heartbeat import summary_body

    equity = day_pnl = None
    positions = None
    if store is not None:
        try:
            snap = store.latest_account_snapshot(mode=config.mode)
            if snap is not None:
                equity = float(snap["equity"])
                if snap.get("last_equity") is not None:
                    day_pnl = equity - float(snap["last_equity"])
            positions = len(store.open_positions(mode=config.mode))
        except Exception:  # the body is a courtesy; the verdict already says what is wrong
            pass
    return summary_body(config.mode, phase or "n/a", equity, positions, day_pnl, note)


def _finish(
    routine: str,
    config: Config,
    now: datetime,
    items: list[CheckItem],
    store: Store | None,
    phase: str | None,
    pinger: Pinger | None,
    reports: Sequence[Path] = (),
) -> RoutineResult:
    result = RoutineResult(routine=routine, mode=config.mode, at=now, items=tuple(items), reports=tuple(reports))
    target = Path(config.report_dir) / f"{config.mode}-{routine}-{_ny_day(now):%Y%m%d}.txt"
    path: Path | None = target
    errors: list[str] = []
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(result.render(), encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        errors.append(f"cannot write {target}: {exc.strerror or exc}")
        path = None
    sent = False
    if pinger is not None:
        ok = result.ok and not errors
        body = _equity_body(config, store, phase, result.verdict + ("" if not errors else f"; {errors[0]}"))
        try:
            sent = pinger.success("report", body=body) if ok else pinger.fail("report", body=body)
        except Exception:  # a heartbeat never breaks the routine
            sent = False
    return RoutineResult(
        routine=routine,
        mode=config.mode,
        at=now,
        items=tuple(items),
        path=path,
        reports=tuple(reports),
        heartbeat_sent=bool(sent),
        errors=tuple(errors),
    )


def _open(store_opener: StoreOpener) -> tuple[Store | None, str | None]:
    try:
        return store_opener(), None
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _close(store: Store | None) -> None:
    if store is not None:
        with contextlib.suppress(Exception):
            store.close()


# ------------------------------------------------------------------------------------------ routines


def morning(
    config: Config,
    table: PhaseTable,
    store_opener: StoreOpener,
    log_file: Path,
    now: datetime,
    *,
    pinger: Pinger | None = None,
    wall_now: datetime | None = None,
    health: Callable[[Config], Mapping[str, Any]] | None = None,
) -> RoutineResult:
    """The procedure's morning routine (5.1). ``now``: the broker's time (days are New York days);
    ``wall_now``: the host's clock, which stamps the trading log (default: ``now``); ``health``: the health
    check (default: ``status.gather_health``); ``pinger``: a :class:`~catalyst.heartbeat.Heartbeat`."""
    wall = wall_now or now
    items = [_health_item(config, health or _default_health)]
    store, error = _open(store_opener)
    phase: str | None = None
    try:
        if store is None:
            items.append(CheckItem("database", "fail", f"cannot open the database: {error}"))
        else:
            today = _ny_day(now)
            try:
                prev = _previous_session(store, config.mode, today)
                start, end = _day_bounds(prev)
                rows = store.closed_positions(since=start, until=end, mode=config.mode)
                items.append(
                    CheckItem(f"yesterday's trades ({prev})", "ok", _summary(rows), tuple(_trade_line(r) for r in rows))
                )
            except Exception as exc:
                items.append(CheckItem("yesterday's trades", "fail", f"cannot read: {exc}"))
        items.append(_log_item(log_file, wall))
        if store is not None:
            try:
                phase = "paper" if config.mode == "paper" else store.current_phase()
                items.append(_mode_item(config, store))
                items.append(_limits_item(config, table, store))
            except Exception as exc:
                items.append(CheckItem("mode and limits", "fail", f"cannot read: {exc}"))
        return _finish("morning", config, now, items, store, phase, pinger)
    finally:
        _close(store)


def _log_item(log_file: Path, wall: datetime) -> CheckItem:
    try:
        count, lines = log_problems(log_file, wall)
    except FileNotFoundError:
        return CheckItem("overnight errors", "warn", f"trading log {log_file} not found")
    except OSError as exc:
        return CheckItem("overnight errors", "fail", f"cannot read {log_file}: {exc.strerror or exc}")
    hours = LOG_WINDOW.total_seconds() / 3600
    if count == 0:
        return CheckItem("overnight errors", "ok", f"no ERROR/CRITICAL line in the last {hours:.0f} h")
    shown = tuple(lines[:_MAX_LOG_LINES_SHOWN])
    more = (f"... and {count - len(shown)} more",) if count > len(shown) else ()
    return CheckItem(
        "overnight errors", "fail", f"{count} ERROR/CRITICAL line(s) in the last {hours:.0f} h", shown + more
    )


def evening(
    config: Config,
    table: PhaseTable,
    store_opener: StoreOpener,
    log_file: Path,
    now: datetime,
    *,
    pinger: Pinger | None = None,
    wall_now: datetime | None = None,
    formats: Sequence[str] = ("txt", "html"),
) -> RoutineResult:
    """The procedure's end-of-day routine (5.2): daily report (written to ``config.report_dir`` in each of
    ``formats``), trade review, cumulative 7-day P&L, backup status. ``now``: the broker's time;
    ``wall_now``: the host's clock, for the backup's age (default: ``now``). ``log_file`` is accepted for a
    signature shared with :func:`morning` (the evening routine does not read the log)."""
    del log_file
    wall = wall_now or now
    items: list[CheckItem] = []
    reports: list[Path] = []
    store, error = _open(store_opener)
    phase: str | None = None
    today = _ny_day(now)
    try:
        if store is None:
            items.append(CheckItem("database", "fail", f"cannot open the database: {error}"))
        else:
            phase = "paper" if config.mode == "paper" else _safe(store.current_phase)
            items += _evening_report(config, table, store, today, formats, reports)
            items.append(_trade_review(config, store, today))
            items.append(_seven_day_pnl(config, store, today))
        items.append(read_backup_status(config.state_dir, wall))
        return _finish("evening", config, now, items, store, phase, pinger, reports)
    finally:
        _close(store)


def _safe(fn: Callable[[], str | None]) -> str | None:
    try:
        return fn()
    except Exception:
        return None


def _evening_report(
    config: Config, table: PhaseTable, store: Store, today: date, formats: Sequence[str], reports: list[Path]
) -> list[CheckItem]:
    from .report import build_report, write_report  # not at module level: `catalyst health` imports this module

    try:
        report = build_report(store, "daily", today, config.mode, table, config)
    except Exception as exc:
        return [CheckItem("daily report", "fail", f"cannot build: {type(exc).__name__}: {exc}")]
    problems = []
    for fmt in formats:
        try:
            reports.append(write_report(report, fmt, config.report_dir))
        except Exception as exc:
            problems.append(f"{fmt}: {type(exc).__name__}: {exc}")
    items = []
    names = ", ".join(p.name for p in reports)
    if problems:
        items.append(CheckItem("daily report", "fail", "not written: " + "; ".join(problems)))
    else:
        items.append(CheckItem("daily report", "ok", f"written to {config.report_dir}: {names}"))
    issues = list(report.warnings)
    events = [f"{e.severity.upper()} {e.what}: {e.detail}" for e in report.events]
    if issues or events or report.active_halt:
        items.append(
            CheckItem(
                "issues",
                "warn",
                f"{len(issues)} warning(s), {len(events)} breach/halt event(s)",
                tuple(issues + events),
            )
        )
    return items


def _trade_review(config: Config, store: Store, today: date) -> CheckItem:
    """The procedure's trade review: today's closed trades, by opening time."""
    start, end = _day_bounds(today)
    rows = [
        r
        for r in store.closed_positions(since=start, mode=config.mode)
        if r["opened_at"] is not None and start <= r["opened_at"] < end
    ]
    rows.sort(key=lambda r: r["opened_at"])
    return CheckItem("trade review", "ok", _summary(rows), tuple(_trade_line(r) for r in rows))


def _equity_before(store: Store, mode: str, day: date) -> float | None:
    """The end-of-day equity before ``day`` (or the broker's ``last_equity`` on the first day after it)."""
    rows = store.daily_equity(mode=mode, since=day - timedelta(days=10))
    before = [r for r in rows if r["date"] < day]
    if before:
        return float(before[-1]["equity"])
    first = next((r for r in rows if r["date"] >= day and r.get("last_equity") is not None), None)
    return float(first["last_equity"]) if first is not None else None


def _seven_day_pnl(config: Config, store: Store, today: date) -> CheckItem:
    """The procedure's cumulative P&L: closed trades opened since (today - 7 days): count, wins, total and
    return. The procedure divides by its account size (10000.0); here the equity at the start of the period
    when it is recorded, else ``LIVE_ACCOUNT_SIZE``."""
    since = datetime.combine(today - timedelta(days=7), time(0), tzinfo=NY)
    rows = [
        r
        for r in store.closed_positions(since=since - timedelta(days=1), mode=config.mode)
        if r["opened_at"] is not None and r["opened_at"] >= since
    ]
    total = sum(float(r["realized_pnl"] or 0) for r in rows)
    wins = sum(1 for r in rows if float(r["realized_pnl"] or 0) > 0)
    start = _equity_before(store, config.mode, since.date())
    size, source = (start, "equity at the start") if start else (config.live_account_size, "LIVE_ACCOUNT_SIZE")
    ret = 100.0 * total / size if size and math.isfinite(size) else float("nan")
    detail = (
        f"total_trades {len(rows)} · wins {wins} · total_pnl {total:+,.2f} · return_pct {ret:+.3f}% "
        f"(since {since.date()}, on {size:,.2f}, {source})"
    )
    return CheckItem("cumulative 7-day P&L", "ok", detail)
