"""The gates: go-live prerequisites, phase promotions, the day 15+ evaluation and month-one readiness.

Pure functions over plain data (procedure PRIMARY-004 sections 1, 2.2 and 6): the caller gathers the
records; a gate returns a ``GateReport`` whose items each show what was measured and the rule it was held
to. Rules, chosen and documented here:

* **never vacuous**: an item that cannot be measured fails: no trades ("no trades"), no winning trades
  (reward:risk), fewer than 2 daily closes (drawdown), no cycles expected (uptime), no orders submitted
  (execution), no database latency, an unreachable live account;
* **boundaries**: "≥ x" passes at x and "< x" fails at x; values within 1e-9 of a threshold count as equal
  to it (so float noise never flips 1.5 into 1.4999999999);
* **go-live** (section 1, all items, plus broker and keys): ≥ 5 trading days, win rate ≥ 50%, average R:R
  ≥ 1.5, total P&L > $0, max drawdown < 10%, 0 risk-limit breaches, 0 critical errors, uptime ≥ 99% of
  market-hours cycles, all services healthy, database latency < 500 ms, 100% of submitted orders executed;
  live account ACTIVE, trading and account not blocked, buying power ≥ LIVE_ACCOUNT_SIZE; live keys present
  and different from the paper keys; the operator named and each human-readiness item acknowledged;
* **promotion**: one step only, to ``table.next_after(phase)`` (skipping is refused and names the allowed
  phase; a target that is not after the current phase is refused: demotion is its own command); at least
  ``min_days`` trading days in the phase; leaving the first phase uses section 6.1, leaving any later one
  uses section 6.2. The human-only criteria ("human monitoring completed", "comfortable with live
  trading") are not measurable here: the operator's promote command is that acknowledgment;
* **day 15+ evaluation** (from ``table.evaluation_from_day``): a "major loss" is a drawdown from the
  go-live equity ``≥ table.major_loss_drawdown`` (10%) → stop; otherwise a day P&L < $0 → demote to the first
  phase; otherwise (P&L ≥ $0) → continue.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from catalyst.metrics import (
    Trade,
    drawdown_from,
    execution_reliability,
    max_drawdown,
    reward_risk,
    total_pnl,
    uptime,
    win_rate,
)
from catalyst.phases import PhaseTable

__all__ = [
    "ACK_ITEMS",
    "Acknowledgment",
    "Evaluation",
    "GateItem",
    "GateReport",
    "KeyCheck",
    "LiveAccount",
    "PaperRecord",
    "PhaseRecord",
    "SystemHealth",
    "evaluate_day",
    "go_live_gate",
    "month_one_readiness",
    "promotion_gate",
]

# Procedure section 1 (go-live prerequisites).
PAPER_MIN_DAYS = 5
PAPER_MIN_WIN_RATE = 0.50
PAPER_MIN_REWARD_RISK = 1.5
PAPER_MAX_DRAWDOWN = 0.10
MIN_UPTIME = 0.99
DB_MAX_LATENCY_MS = 500.0
# Procedure section 6.2 (first week) and 6.3 (first month).
WEEK_MIN_WIN_RATE = 0.45
WEEK_MIN_REWARD_RISK = 1.3
WEEK_MAX_DRAWDOWN = 0.05
MONTH_MIN_WIN_RATE = 0.50
MONTH_MIN_REWARD_RISK = 1.5

_EPS = 1e-9
NO_TRADES = "no trades"

PAPER = "Paper trading results"
SYSTEM = "System stability"
BROKER = "Broker"
KEYS = "Keys"
HUMAN = "Human readiness"
PROMOTION = "Promotion"
ACCEPT_61 = "Acceptance (6.1)"
ACCEPT_62 = "Acceptance (6.2)"
ACCEPT_63 = "First month (6.3)"
EVALUATION = "Day 15+ evaluation"


# ------------------------------------------------------------------------------------------ reports


@dataclass(frozen=True, slots=True)
class GateItem:
    """One criterion: what was ``measured``, the ``threshold`` it was held to, and the verdict."""

    section: str
    name: str
    measured: str
    threshold: str
    passed: bool

    def line(self) -> str:
        """``"✅ win rate: 55.0% (11 of 20 trades) (needs ≥ 50%)"``."""
        mark = "✅" if self.passed else "❌"
        return f"{mark} {self.name}: {self.measured} (needs {self.threshold})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "measured": self.measured,
            "threshold": self.threshold,
            "passed": self.passed,
        }


@dataclass(frozen=True, slots=True)
class GateReport:
    """A gate's verdict with every item it considered, in order."""

    name: str
    items: tuple[GateItem, ...]

    @property
    def passed(self) -> bool:
        """True when there is at least one item and every item passed."""
        return bool(self.items) and all(item.passed for item in self.items)

    def failed(self) -> tuple[GateItem, ...]:
        """The items that did not pass, in order."""
        return tuple(item for item in self.items if not item.passed)

    def verdict(self) -> str:
        """``"GATE PASSED"`` or ``"GATE REFUSED: n of m items failed"``."""
        if self.passed:
            return "GATE PASSED"
        return f"GATE REFUSED: {len(self.failed())} of {len(self.items)} items failed"

    def render(self) -> str:
        """The itemised text report: a title, each section with one line per item, then the verdict."""
        lines = [f"Gate: {self.name}"]
        sections: list[str] = []
        for item in self.items:
            if item.section not in sections:
                sections.append(item.section)
        for section in sections:
            lines.append("")
            lines.append(section)
            lines.extend(f"  {item.line()}" for item in self.items if item.section == section)
        lines.append("")
        lines.append(self.verdict())
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: ``{"name", "passed", "items": [{section, name, measured, threshold, passed}]}``."""
        return {"name": self.name, "passed": self.passed, "items": [item.as_dict() for item in self.items]}


# ------------------------------------------------------------------------------------------ inputs


@dataclass(frozen=True, slots=True)
class PaperRecord:
    """Everything measured over the paper period."""

    trading_days: int  # sessions with at least one successful cycle
    trades: tuple[Trade, ...]
    daily_equity: tuple[float, ...]  # end-of-day equity, oldest first
    breaches: int  # risk events with severity 'breach' or 'stop'
    critical_errors: int
    expected_cycles: int  # market minutes in the period's sessions (one cycle per minute)
    ok_cycles: int  # cycles with outcome ok
    orders_submitted: int
    orders_failed: int  # status unknown/failed (not broker rejections)


@dataclass(frozen=True, slots=True)
class SystemHealth:
    healthy: bool  # the `catalyst health` verdict
    failing: tuple[str, ...]  # names of failing checks
    db_latency_ms: float | None


@dataclass(frozen=True, slots=True)
class LiveAccount:
    reachable: bool
    status: str  # "ACTIVE" expected
    trading_blocked: bool
    account_blocked: bool
    buying_power: float
    error: str | None = None


@dataclass(frozen=True, slots=True)
class KeyCheck:
    live_keys_present: bool
    live_keys_differ_from_paper: bool


ACK_ITEMS = (
    "strategy_understood",
    "emergency_procedure_known",
    "can_monitor_market_hours",
    "comfortable_with_risk_parameters",
    "reviewed_all_paper_trades",
)
"""Procedure section 1, Human Readiness: the items the operator must acknowledge."""

_ACK_LABELS = {
    "strategy_understood": "strategy understood completely",
    "emergency_procedure_known": "emergency stop procedure known",
    "can_monitor_market_hours": "can monitor during market hours",
    "comfortable_with_risk_parameters": "comfortable with risk parameters",
    "reviewed_all_paper_trades": "reviewed all paper trades",
}


@dataclass(frozen=True, slots=True)
class Acknowledgment:
    by: str | None
    items: Mapping[str, bool]  # keys = ACK_ITEMS; only a literal True acknowledges


@dataclass(frozen=True, slots=True)
class PhaseRecord:
    """What happened in the current live phase."""

    phase: str
    trading_days: int  # sessions traded in this phase
    trades: tuple[Trade, ...]
    daily_equity: tuple[float, ...]
    breaches: int
    critical_errors: int
    crashes: int  # cycles with outcome 'error'
    missing_stop_events: int  # risk events rule 'missing_stop'
    execution_failures: int
    sizing_errors: tuple[str, ...]
    max_concurrent: int


@dataclass(frozen=True, slots=True)
class Evaluation:
    action: str  # "continue" | "demote" | "stop" | "wait" (wait: before the evaluation day)
    reasons: tuple[str, ...]
    report: GateReport


# ------------------------------------------------------------------------------------------ helpers


def _finite(*values: float | None) -> bool:
    return all(
        v is not None and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    )


def _at_least(value: float, threshold: float) -> bool:
    return _finite(value) and value >= threshold - _EPS * max(1.0, abs(threshold))


def _below(value: float, threshold: float) -> bool:
    return _finite(value) and value < threshold - _EPS * max(1.0, abs(threshold))


def _money(value: float) -> str:
    if not _finite(value):
        return repr(value)
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def _rule_pct(fraction: float) -> str:
    """A threshold as the procedure writes it: 0.5 -> ``50%``, 0.0075 -> ``0.75%``."""
    return f"{round(fraction * 100, 6):g}%"


def _pct(value: float, threshold: float | None = None) -> str:
    """``55.0%``; near a threshold, more digits so a failing value never reads as the threshold."""
    if not _finite(value):
        return repr(value)
    digits = 1
    if threshold is not None and value != threshold:
        while digits < 4 and round(value * 100, digits) == round(threshold * 100, digits):
            digits += 1
    return f"{value * 100:.{digits}f}%"


def _ratio(value: float, threshold: float) -> str:
    digits = 2
    if value != threshold:
        while digits < 5 and round(value, digits) == round(threshold, digits):
            digits += 1
    return f"{value:.{digits}f}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _count_item(section: str, name: str, count: int, context: str = "") -> GateItem:
    measured = f"{count}{context}"
    return GateItem(section, name, measured, "= 0", count == 0)


def _win_rate_item(section: str, trades: Sequence[Trade], minimum: float) -> GateItem:
    threshold = f"≥ {_rule_pct(minimum)}"
    rate = win_rate(trades)
    if rate is None:
        return GateItem(section, "win rate", NO_TRADES, threshold, False)
    wins = sum(1 for t in trades if _finite(t.realized_pnl) and t.realized_pnl > 0)
    measured = f"{_pct(rate, minimum)} ({wins} of {_plural(len(trades), 'trade')})"
    return GateItem(section, "win rate", measured, threshold, _at_least(rate, minimum))


def _reward_risk_item(section: str, trades: Sequence[Trade], minimum: float) -> GateItem:
    name = "average R:R"
    threshold = f"≥ {minimum:g}"
    if not trades:
        return GateItem(section, name, NO_TRADES, threshold, False)
    rr = reward_risk(trades)
    pnls = [t.realized_pnl for t in trades if _finite(t.realized_pnl)]
    wins = [p for p in pnls if p > 0]
    losses = [-p for p in pnls if p < 0]
    if rr is None:
        return GateItem(section, name, f"no winning trades (0 of {len(trades)})", threshold, False)
    if math.isinf(rr):
        measured = f"∞ (no losing trades; avg win {_money(sum(wins) / len(wins))})"
        return GateItem(section, name, measured, threshold, True)
    measured = (
        f"{_ratio(rr, minimum)} (avg win {_money(sum(wins) / len(wins))} / "
        f"avg loss {_money(sum(losses) / len(losses))})"
    )
    return GateItem(section, name, measured, threshold, _at_least(rr, minimum))


def _pnl_item(section: str, trades: Sequence[Trade], strict: bool, name: str = "total P&L") -> GateItem:
    threshold = "> $0" if strict else "≥ $0"
    if not trades:
        return GateItem(section, name, NO_TRADES, threshold, False)
    pnl = total_pnl(trades)
    count = _plural(len(trades), "trade")
    if not _finite(pnl):
        return GateItem(section, name, f"cannot be measured ({count})", threshold, False)
    return GateItem(section, name, f"{_money(pnl)} ({count})", threshold, pnl > 0 if strict else pnl >= 0)


def _drawdown_item(section: str, equity: Sequence[float], maximum: float) -> GateItem:
    threshold = f"< {_rule_pct(maximum)}"
    points = [v for v in equity if _finite(v)]
    if len(points) < 2:
        measured = f"no equity curve ({_plural(len(points), 'daily close')}; needs ≥ 2)"
        return GateItem(section, "max drawdown", measured, threshold, False)
    dd = max_drawdown(points)
    measured = f"{_pct(dd, maximum)} (over {len(points)} daily closes, low {_money(min(points))})"
    return GateItem(section, "max drawdown", measured, threshold, _below(dd, maximum))


# ------------------------------------------------------------------------------------------ go-live


def _paper_items(paper: PaperRecord) -> list[GateItem]:
    trades = paper.trades
    days = paper.trading_days
    return [
        GateItem(
            PAPER,
            "trading days",
            _plural(days, "day"),
            f"≥ {PAPER_MIN_DAYS} trading days",
            days >= PAPER_MIN_DAYS,
        ),
        _win_rate_item(PAPER, trades, PAPER_MIN_WIN_RATE),
        _reward_risk_item(PAPER, trades, PAPER_MIN_REWARD_RISK),
        _pnl_item(PAPER, trades, strict=True),
        _drawdown_item(PAPER, paper.daily_equity, PAPER_MAX_DRAWDOWN),
        _count_item(PAPER, "risk-limit breaches", paper.breaches),
    ]


def _system_items(paper: PaperRecord, health: SystemHealth) -> list[GateItem]:
    items = [
        _count_item(SYSTEM, "critical errors", paper.critical_errors, f" over {_plural(paper.trading_days, 'day')}")
    ]

    up = uptime(paper.expected_cycles, paper.ok_cycles)
    threshold = f"≥ {_rule_pct(MIN_UPTIME)}"
    if up is None:
        items.append(GateItem(SYSTEM, "uptime (market hours)", "no market-hours cycles expected", threshold, False))
    else:
        measured = f"{_pct(up, MIN_UPTIME)} ({paper.ok_cycles} of {paper.expected_cycles} cycles)"
        items.append(GateItem(SYSTEM, "uptime (market hours)", measured, threshold, _at_least(up, MIN_UPTIME)))

    if health.healthy and not health.failing:
        measured = "all checks healthy"
    elif health.failing:
        measured = f"failing: {', '.join(health.failing)}"
    else:
        measured = "unhealthy"
    items.append(GateItem(SYSTEM, "services healthy", measured, "all healthy", health.healthy and not health.failing))

    latency = health.db_latency_ms
    db_rule = f"< {DB_MAX_LATENCY_MS:g} ms"
    if latency is None or not _finite(latency):
        items.append(GateItem(SYSTEM, "database responsive", "no response", db_rule, False))
    else:
        items.append(GateItem(SYSTEM, "database responsive", f"{latency:.0f} ms", db_rule, latency < DB_MAX_LATENCY_MS))

    reliability = execution_reliability(paper.orders_submitted, paper.orders_failed)
    if reliability is None:
        items.append(GateItem(SYSTEM, "order execution", "no orders submitted", "= 100%", False))
    else:
        executed = paper.orders_submitted - paper.orders_failed
        measured = (
            f"{_pct(reliability, 1.0)} ({executed} of {paper.orders_submitted} orders; {paper.orders_failed} failed)"
        )
        items.append(GateItem(SYSTEM, "order execution", measured, "= 100%", paper.orders_failed == 0))
    return items


def _broker_items(account: LiveAccount, live_account_size: float) -> list[GateItem]:
    size_rule = f"≥ {_money(live_account_size)} (LIVE_ACCOUNT_SIZE)"
    if not account.reachable:
        why = f"unreachable: {account.error}" if account.error else "unreachable"
        unknown = "unknown (account unreachable)"
        return [
            GateItem(BROKER, "live account status", why, "= ACTIVE", False),
            GateItem(BROKER, "trading not blocked", unknown, "not blocked", False),
            GateItem(BROKER, "account not blocked", unknown, "not blocked", False),
            GateItem(BROKER, "buying power", unknown, size_rule, False),
        ]
    status = account.status.strip()
    bp = account.buying_power
    return [
        GateItem(BROKER, "live account status", status or "(empty)", "= ACTIVE", status.upper() == "ACTIVE"),
        GateItem(
            BROKER,
            "trading not blocked",
            "BLOCKED" if account.trading_blocked else "not blocked",
            "not blocked",
            not account.trading_blocked,
        ),
        GateItem(
            BROKER,
            "account not blocked",
            "BLOCKED" if account.account_blocked else "not blocked",
            "not blocked",
            not account.account_blocked,
        ),
        GateItem(
            BROKER, "buying power", _money(bp), size_rule, _finite(bp, live_account_size) and bp >= live_account_size
        ),
    ]


def _key_items(keys: KeyCheck) -> list[GateItem]:
    return [
        GateItem(
            KEYS,
            "live keys present",
            "present" if keys.live_keys_present else "missing",
            "present",
            keys.live_keys_present,
        ),
        GateItem(
            KEYS,
            "live keys differ from paper",
            "different from the paper keys"
            if keys.live_keys_differ_from_paper
            else ("same as the paper keys" if keys.live_keys_present else "no live keys to compare"),
            "different from the paper keys",
            keys.live_keys_differ_from_paper,
        ),
    ]


def _human_items(ack: Acknowledgment) -> list[GateItem]:
    by = (ack.by or "").strip()
    items = [GateItem(HUMAN, "acknowledged by", by or "nobody named", "the operator named", bool(by))]
    for key in ACK_ITEMS:
        given = ack.items.get(key) is True
        items.append(
            GateItem(
                HUMAN,
                _ACK_LABELS[key],
                "acknowledged" if given else "not acknowledged",
                "acknowledged",
                given,
            )
        )
    return items


def go_live_gate(
    paper: PaperRecord,
    health: SystemHealth,
    account: LiveAccount,
    keys: KeyCheck,
    ack: Acknowledgment,
    live_account_size: float,
) -> GateReport:
    """Procedure section 1, every item, plus the live broker account and the live keys.

    Sections, in order: Paper trading results (6 items), System stability (5), Broker (4), Keys (2),
    Human readiness (6: the operator named, then each of ``ACK_ITEMS``). Live trading is refused unless
    every item passes.
    """
    items = [
        *_paper_items(paper),
        *_system_items(paper, health),
        *_broker_items(account, live_account_size),
        *_key_items(keys),
        *_human_items(ack),
    ]
    return GateReport("go-live", tuple(items))


# ------------------------------------------------------------------------------------------ promotion


def _step_item(record: PhaseRecord, table: PhaseTable, target: str) -> GateItem:
    names = table.names
    current = record.phase
    nxt = table.next_after(current)
    name = "next phase"
    if nxt is None:
        return GateItem(
            PROMOTION, name, f"{current} is the last phase; nothing to promote to", "a phase after the current", False
        )
    threshold = f"= {nxt.name} (the next phase after {current})"
    if target == nxt.name:
        return GateItem(PROMOTION, name, f"{current} → {target}", threshold, True)
    if target not in names:
        return GateItem(PROMOTION, name, f"{target!r} is not a phase (valid: {', '.join(names)})", threshold, False)
    here, there = names.index(current), names.index(target)
    if there <= here:
        measured = f"{target} is not after {current} (to move down use `catalyst phase demote`)"
        return GateItem(PROMOTION, name, measured, threshold, False)
    skipped = ", ".join(names[here + 1 : there])
    return GateItem(PROMOTION, name, f"{current} → {target} skips {skipped}", threshold, False)


def _acceptance_61(record: PhaseRecord, table: PhaseTable) -> list[GateItem]:
    limits = table.get(record.phase).limits
    trades = record.trades
    n = len(trades)
    items = [_count_item(ACCEPT_61, "critical errors", record.critical_errors)]

    if not trades:
        items.append(GateItem(ACCEPT_61, "all trades executed correctly", NO_TRADES, "= 0 execution failures", False))
        items.append(GateItem(ACCEPT_61, "stop losses always set", NO_TRADES, "a stop on every trade", False))
    else:
        items.append(
            GateItem(
                ACCEPT_61,
                "all trades executed correctly",
                f"{_plural(record.execution_failures, 'execution failure')} ({_plural(n, 'trade')})",
                "= 0 execution failures",
                record.execution_failures == 0,
            )
        )
        with_stop = sum(1 for t in trades if _finite(t.stop_price) and (t.stop_price or 0) > 0)
        items.append(
            GateItem(
                ACCEPT_61,
                "stop losses always set",
                f"{with_stop} of {n} trades had a stop; {_plural(record.missing_stop_events, 'missing-stop event')}",
                "a stop on every trade",
                with_stop == n and record.missing_stop_events == 0,
            )
        )

    sizing_rule = f"each entry's risk ≈ {_rule_pct(limits.risk_per_trade)} of equity"
    if not trades:
        items.append(GateItem(ACCEPT_61, "position sizing accurate", NO_TRADES, sizing_rule, False))
    else:
        unknown = sum(1 for t in trades if t.initial_risk is None)
        errors = record.sizing_errors
        parts: list[str] = []
        if errors:
            more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
            parts.append(f"{_plural(len(errors), 'oversized entry')}: {errors[0]}{more}")
        if unknown:
            parts.append(f"{unknown} of {n} trades have no recorded initial risk")
        measured = "; ".join(parts) if parts else f"{n} of {n} entries within budget"
        items.append(GateItem(ACCEPT_61, "position sizing accurate", measured, sizing_rule, not parts))

    concurrent_rule = f"≤ {limits.max_positions} positions"
    if not trades:
        items.append(GateItem(ACCEPT_61, "max concurrent positions", NO_TRADES, concurrent_rule, False))
    else:
        items.append(
            GateItem(
                ACCEPT_61,
                "max concurrent positions",
                f"{record.max_concurrent} at once",
                concurrent_rule,
                record.max_concurrent <= limits.max_positions,
            )
        )
    items.append(_count_item(ACCEPT_61, "risk-limit breaches", record.breaches))
    items.append(_pnl_item(ACCEPT_61, trades, strict=False))
    return items


def _acceptance_62(record: PhaseRecord) -> list[GateItem]:
    return [
        _win_rate_item(ACCEPT_62, record.trades, WEEK_MIN_WIN_RATE),
        _reward_risk_item(ACCEPT_62, record.trades, WEEK_MIN_REWARD_RISK),
        _drawdown_item(ACCEPT_62, record.daily_equity, WEEK_MAX_DRAWDOWN),
        _count_item(ACCEPT_62, "crashes", record.crashes, " cycles with an error"),
    ]


def promotion_gate(record: PhaseRecord, table: PhaseTable, target: str) -> GateReport:
    """May the account move from ``record.phase`` up to ``target``?

    Items: the step (only ``table.next_after(record.phase)`` is allowed; skipping names the allowed phase,
    a target that is not after the current phase is refused: demotion is a different command); at least
    ``min_days`` trading days in the current phase; then the acceptance criteria for leaving it:
    section 6.1 when leaving the first phase (conservative), section 6.2 when leaving a later one
    (moderate). Each unmet criterion is an ❌ item with its value.
    """
    name = f"promote {record.phase} → {target}"
    if record.phase not in table.names:
        item = GateItem(
            PROMOTION,
            "current phase",
            f"{record.phase!r} is not a phase",
            f"one of {', '.join(table.names)}",
            False,
        )
        return GateReport(name, (item,))

    phase = table.get(record.phase)
    items = [_step_item(record, table, target)]
    items.append(
        GateItem(
            PROMOTION,
            "days in phase",
            f"{_plural(record.trading_days, 'day')} in {phase.name}",
            f"≥ {phase.min_days} trading days",
            record.trading_days >= phase.min_days,
        )
    )
    if table.next_after(phase.name) is not None:
        if table.names.index(phase.name) == 0:
            items.extend(_acceptance_61(record, table))
        else:
            items.extend(_acceptance_62(record))
    return GateReport(name, tuple(items))


# ------------------------------------------------------------------------------------------ day 15+


def evaluate_day(
    day_number: int,
    day_pnl: float,
    go_live_equity: float,
    equity: float,
    phase: str,
    table: PhaseTable,
) -> Evaluation:
    """The daily evaluation from day ``table.evaluation_from_day`` (15) on (procedure 2.2, "Day 15+").

    Before that day → ``wait``. From it: a **major loss**, i.e. a drawdown from the go-live equity
    ``(go_live_equity - equity) / go_live_equity ≥ table.major_loss_drawdown`` (10%), or a drawdown that
    cannot be measured → ``stop``; else a losing day (``day_pnl < 0``, or not a number) → ``demote`` to
    ``table.first``; else (``day_pnl ≥ 0``) → ``continue`` in the current phase.
    """
    start = table.evaluation_from_day
    name = f"evaluate day {day_number} ({phase})"
    if start is None or day_number < start:
        if start is None:
            reason = "no day 15+ evaluation: the last phase is open-ended"
            threshold = "a bounded ramp-up schedule"
        else:
            reason = f"day {day_number}: the daily evaluation starts on day {start}; follow the ramp-up schedule"
            threshold = f"≥ day {start}"
        item = GateItem(EVALUATION, "evaluation day", f"day {day_number}", threshold, False)
        return Evaluation("wait", (reason,), GateReport(name, (item,)))

    limit = table.major_loss_drawdown
    dd = drawdown_from(go_live_equity, equity)
    major = not _below(dd, limit)
    if math.isinf(dd):
        dd_text = f"cannot be measured (go-live equity {_money(go_live_equity)}, now {_money(equity)})"
    else:
        dd_text = f"{_pct(dd, limit)} from go-live equity {_money(go_live_equity)} (now {_money(equity)})"
    losing = not (_finite(day_pnl) and day_pnl >= 0)
    items = (
        GateItem(EVALUATION, "evaluation day", f"day {day_number}", f"≥ day {start}", True),
        GateItem(EVALUATION, "drawdown (major loss)", dd_text, f"< {_rule_pct(limit)}", not major),
        GateItem(EVALUATION, "day P&L", _money(day_pnl), "≥ $0", not losing),
    )
    report = GateReport(name, items)
    if major:
        return Evaluation("stop", (f"major loss: drawdown {dd_text} ≥ {_rule_pct(limit)}; stop and analyze",), report)
    if losing:
        first = table.first.name
        note = f" (already in {first})" if phase == first else ""
        reason = f"losing day: P&L {_money(day_pnl)} < $0; return to {first}{note}"
        return Evaluation("demote", (reason,), report)
    return Evaluation("continue", (f"profitable day: P&L {_money(day_pnl)} ≥ $0; stay in {phase}",), report)


# ------------------------------------------------------------------------------------------ month one


def month_one_readiness(trades: Iterable[Trade], daily_equity: Sequence[float], autonomous: bool) -> GateReport:
    """Procedure section 6.3 (first month): win rate ≥ 50%, average R:R ≥ 1.5, profitable overall (total
    realised P&L > $0; the equity change over ``daily_equity`` is shown for context), system autonomous."""
    closed = tuple(trades)
    pnl = _pnl_item(ACCEPT_63, closed, strict=True, name="profitable overall")
    points = [v for v in daily_equity if _finite(v)]
    if closed and len(points) >= 2:
        change = points[-1] - points[0]
        pnl = GateItem(pnl.section, pnl.name, f"{pnl.measured}; equity {_money(change)}", pnl.threshold, pnl.passed)
    items = (
        _win_rate_item(ACCEPT_63, closed, MONTH_MIN_WIN_RATE),
        _reward_risk_item(ACCEPT_63, closed, MONTH_MIN_REWARD_RISK),
        pnl,
        GateItem(ACCEPT_63, "system autonomous", "yes" if autonomous else "no", "yes", autonomous),
    )
    return GateReport("first month (6.3)", items)
