"""Paper → live: gather the records, run the gates, and record the moves (go-live, promote, demote, evaluate).

The judging is pure (``gates.py`` over ``metrics.py``); this module only reads what the judges need from
the database and the broker, and writes down what they decided. Lifecycle time is the broker's clock:
phase changes are stamped with it, so that a simulated week and a real one count days the same way.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .broker.lite import LiteBroker
from .broker.models import NY, BrokerError
from .config import Config
from .gates import (
    Acknowledgment,
    Evaluation,
    GateReport,
    KeyCheck,
    LiveAccount,
    PaperRecord,
    PhaseRecord,
    SystemHealth,
    evaluate_day,
    go_live_gate,
    month_one_readiness,
    promotion_gate,
)
from .metrics import concurrency_high_water, sizing_errors, trade_of
from .phases import PhaseTable

GATE_VALID_FOR = timedelta(hours=24)


class LifecycleRefused(Exception):
    """A move the rules do not allow; the message says which rule and what to do."""

    def __init__(self, message: str, report: GateReport | None = None) -> None:
        super().__init__(message)
        self.report = report


def session_minutes(broker: LiteBroker, days: Sequence[date]) -> dict[date, int]:
    """Market minutes of each trading day (390, or 210 on a 13:00 early close), from the broker's calendar."""
    if not days:
        return {}
    sessions = broker.calendar(min(days), max(days))
    return {d: int((close - open_).total_seconds() // 60) for d, open_, close in sessions}


def _window_records(store: Any, broker: LiteBroker, mode: str, since: datetime | None,
                    cycle_minutes: int = 1) -> dict[str, Any]:
    trades = tuple(trade_of(r) for r in store.closed_positions(mode=mode, since=since))
    days = [r for r in store.cycle_days(mode=mode, since=since) if r["ok"] > 0]
    minutes = session_minutes(broker, [r["day"] for r in days])
    equity_rows = store.daily_equity(mode=mode, since=since.astimezone(NY).date() if since else None)
    events = store.risk_events_since(since or datetime(1970, 1, 1, tzinfo=UTC), mode=mode)
    counts = store.order_counts(mode=mode, since=since)
    return {
        "trades": trades,
        "days": days,
        "expected_cycles": sum(minutes.get(r["day"], 390) // cycle_minutes for r in days),
        "ok_cycles": sum(int(r["ok"]) for r in days),
        "errors": sum(int(r["error"]) for r in days),
        # the curve starts at the first day's opening equity, so a first-day loss counts as drawdown
        "daily_equity": tuple(([float(equity_rows[0]["last_equity"])] if equity_rows and equity_rows[0]["last_equity"]
                               else []) + [float(r["equity"]) for r in equity_rows]),
        "events": events,
        "submitted": int(counts["submitted"]),
        "failed": int(counts["failed"]),
    }


def paper_record(store: Any, broker: LiteBroker, since: datetime | None = None,
                 cycle_minutes: int = 1) -> PaperRecord:
    w = _window_records(store, broker, "paper", since, cycle_minutes)
    events = w["events"]
    return PaperRecord(
        trading_days=len(w["days"]), trades=w["trades"], daily_equity=w["daily_equity"],
        breaches=sum(1 for e in events if e["severity"] in ("breach", "stop")),
        critical_errors=sum(1 for e in events if e["rule"] == "critical_error") + w["errors"],
        expected_cycles=w["expected_cycles"], ok_cycles=w["ok_cycles"],
        orders_submitted=w["submitted"], orders_failed=w["failed"],
    )


def phase_record(store: Any, broker: LiteBroker, phase: str, since: datetime, table: PhaseTable,
                 equity: float) -> PhaseRecord:
    w = _window_records(store, broker, "live", since)
    events = w["events"]
    limits = table.get(phase).limits
    return PhaseRecord(
        phase=phase, trading_days=len(w["days"]), trades=w["trades"], daily_equity=w["daily_equity"],
        breaches=sum(1 for e in events if e["severity"] in ("breach", "stop")),
        critical_errors=sum(1 for e in events if e["rule"] == "critical_error"),
        crashes=w["errors"], missing_stop_events=sum(1 for e in events if e["rule"] == "missing_stop"),
        execution_failures=w["failed"], sizing_errors=tuple(sizing_errors(w["trades"], limits.risk_per_trade, equity)),
        max_concurrent=concurrency_high_water(w["trades"]),
    )


def live_account(cfg: Config) -> tuple[LiveAccount, KeyCheck]:
    present = cfg.live_api_key is not None and cfg.live_secret_key is not None
    paper_key = cfg.api_key.reveal() if cfg.mode == "paper" else (cfg.paper_api_key.reveal()
                                                                   if cfg.paper_api_key else "")
    differ = present and not hmac.compare_digest(cfg.live_api_key.reveal() if cfg.live_api_key else "", paper_key)
    keys = KeyCheck(live_keys_present=present, live_keys_differ_from_paper=bool(differ))
    if not present:
        return LiveAccount(False, "unknown", False, False, 0.0, "ALPACA_LIVE_API_KEY / ALPACA_LIVE_SECRET_KEY are not "
                                                                "in secrets.env"), keys
    assert cfg.live_api_key is not None and cfg.live_secret_key is not None
    try:
        with LiteBroker(cfg.live_base_url, cfg.live_api_key.reveal(), cfg.live_secret_key.reveal()) as live:
            a = live.account()
    except BrokerError as exc:
        return LiveAccount(False, "unknown", False, False, 0.0, str(exc)), keys
    return LiveAccount(True, a.status, a.trading_blocked, a.account_blocked, a.buying_power), keys


def system_health(cfg: Config) -> SystemHealth:
    from .status import gather_health

    data = gather_health(cfg, skew_limit=cfg.clock_skew_max)
    failing = tuple(name for name, c in data["checks"].items() if c["state"] == "fail")
    latency = None
    detail = data["checks"].get("database", {}).get("detail", "")
    if detail.startswith("answered in "):
        latency = float(detail.split()[2])
    return SystemHealth(healthy=bool(data["healthy"]), failing=failing, db_latency_ms=latency)


@dataclass
class GateRun:
    report: GateReport
    recorded_id: int | None


def run_go_live_gate(cfg: Config, store: Any, broker: LiteBroker, ack: Acknowledgment,
                     since: datetime | None = None) -> GateRun:
    """Evaluate every prerequisite; a passing gate is recorded (who acknowledged, when); a failing one is not."""
    account, keys = live_account(cfg)
    report = go_live_gate(paper_record(store, broker, since, cfg.cycle_minutes), system_health(cfg), account, keys, ack,
                          cfg.live_account_size)
    if not report.passed:
        return GateRun(report, None)
    row = store.record_go_live(passed=True, report=report.as_dict(), acknowledged_by=ack.by,
                               acknowledgments={**ack.items, "at": datetime.now(UTC).isoformat()},
                               live_account_equity=account.buying_power)
    return GateRun(report, int(row["id"]))


def go_live(store: Any, broker: LiteBroker, actor: str, now: datetime | None = None) -> dict[str, Any]:
    """Enter conservative, only on a passing gate from the last 24 hours. There is no way around it."""
    gate = store.latest_go_live(passed_only=True)
    wall = datetime.now(UTC)
    if gate is None:
        raise LifecycleRefused("go-live refused: no passing go-live gate is recorded; run `catalyst gate go-live`")
    age = wall - gate["created_at"]
    if age > GATE_VALID_FOR:
        raise LifecycleRefused(f"go-live refused: the last passing gate is {age.total_seconds() / 3600:.1f} h old "
                               f"(limit 24 h); run `catalyst gate go-live` again")
    current = store.current_phase()
    if current is not None:
        raise LifecycleRefused(f"go-live refused: already live in phase {current}; use `catalyst phase`")
    at = now or broker.clock().timestamp
    row = store.record_phase_change(to_phase="conservative", from_phase="paper", action="go_live", actor=actor,
                                    reason=f"go-live gate #{gate['id']} passed", changed_at=at,
                                    criteria={"gate_id": gate["id"]})
    return {"phase": "conservative", "changed_at": row["changed_at"], "gate_id": gate["id"]}


def _current(store: Any) -> tuple[str, datetime]:
    rec = store.current_phase_record()
    if rec is None:
        raise LifecycleRefused("not live: no phase is recorded; go live first (`catalyst gate go-live`, then "
                               "`catalyst go-live`)")
    return str(rec["to_phase"]), rec["changed_at"]


def promote(store: Any, broker: LiteBroker, table: PhaseTable, actor: str, target: str | None = None) -> GateReport:
    return _promote(store, broker, table, actor, *_current(store), target)


def _promote(store: Any, broker: LiteBroker, table: PhaseTable, actor: str, phase: str, since: datetime,
             target: str | None) -> GateReport:
    nxt = table.next_after(phase)
    want = target or (nxt.name if nxt else phase)
    equity = broker.account().equity
    report = promotion_gate(phase_record(store, broker, phase, since, table, equity), table, want)
    if not report.passed:
        raise LifecycleRefused(f"promotion {phase} → {want} refused", report)
    store.record_phase_change(to_phase=want, from_phase=phase, action="promote", actor=actor,
                              reason="acceptance criteria met", criteria=report.as_dict(),
                              changed_at=broker.clock().timestamp)
    return report


def demote(store: Any, broker: LiteBroker, table: PhaseTable, actor: str, target: str, reason: str) -> str:
    return _demote(store, broker, table, actor, _current(store)[0], target, reason)


def _demote(store: Any, broker: LiteBroker, table: PhaseTable, actor: str, phase: str, target: str,
            reason: str) -> str:
    table.get(target)  # names an unknown phase
    if table.names.index(target) >= table.names.index(phase):
        raise LifecycleRefused(f"demote refused: {target} is not below the current phase {phase}; "
                               "use `catalyst phase promote` to move up")
    store.record_phase_change(to_phase=target, from_phase=phase, action="demote", actor=actor, reason=reason,
                              changed_at=broker.clock().timestamp)
    return target


def ramp(store: Any, broker: LiteBroker, table: PhaseTable, actor: str, target: str,
         reason: str | None = None) -> dict[str, Any]:
    """Move to ``target``: a promotion when it is above the current phase (acceptance criteria apply), a
    demotion when below (needs ``reason``), nothing when already there. The ramp playbooks call this."""
    phase, since = _current(store)
    table.get(target)  # names an unknown phase
    names = table.names
    if names.index(target) == names.index(phase):
        return {"action": "none", "from": phase, "to": target, "report": None}
    if names.index(target) > names.index(phase):
        report = _promote(store, broker, table, actor, phase, since, target)
        return {"action": "promote", "from": phase, "to": target, "report": report.as_dict()}
    if not reason or not reason.strip():
        raise LifecycleRefused(f"ramp {phase} → {target} is a demotion: give the reason (--reason; the playbooks' "
                               "phase_reason); nothing changed")
    _demote(store, broker, table, actor, phase, target, reason)
    return {"action": "demote", "from": phase, "to": target, "report": None}


def live_day_number(store: Any) -> tuple[int, float | None]:
    """Trading days since go-live (day 1 = the first live session) and the equity at go-live."""
    history = store.phase_history(limit=1000)
    go_lives = [h for h in history if h["action"] == "go_live"]
    if not go_lives:
        return 0, None
    start = go_lives[0]["changed_at"]
    days = [r for r in store.cycle_days(mode="live", since=start) if r["ok"] > 0]
    equity = store.daily_equity(mode="live", since=start.astimezone(NY).date())
    start_equity = float(equity[0]["last_equity"] or equity[0]["equity"]) if equity else None
    return len(days), start_equity


def evaluate(store: Any, broker: LiteBroker, table: PhaseTable) -> tuple[Evaluation, GateReport | None]:
    """The daily evaluation after the close. The caller acts on ``stop`` (emergency stop + alert)."""
    phase, _ = _current(store)
    day, start_equity = live_day_number(store)
    account = broker.account()
    rows = store.daily_equity(mode="live")
    day_pnl = float(rows[-1]["pnl"] or 0) if rows else 0.0
    ev = evaluate_day(day, day_pnl, start_equity or account.equity, account.equity, phase, table)
    if ev.action == "demote" and phase != table.first.name:
        store.record_phase_change(to_phase=table.first.name, from_phase=phase, action="evaluate",
                                  actor="evaluate", reason="; ".join(ev.reasons), changed_at=broker.clock().timestamp)
    month = None
    if day >= 20:
        trades = [trade_of(r) for r in store.closed_positions(mode="live")]
        month = month_one_readiness(trades, tuple(float(r["equity"]) for r in rows), autonomous=True)
    return ev, month
