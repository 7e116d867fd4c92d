"""Reports: what happened over a day, a week or a month, for the trader to read on the phone or the droplet.

``build_report`` reads the database once and returns a :class:`Report` of plain data; the renderers turn
it into text, JSON or HTML (with an equity chart as a PNG beside it), and ``write_report`` puts the file in
the report directory the way the procedure's end-of-day routine did (``reports/live-YYYYMMDD.txt``), as
``{mode}-{kind}-{YYYYMMDD}.{txt|json|html}``.

A report covers (procedure PRIMARY-004, sections 5.2 and 7.1): the trades with entry, exit, P&L and R
(R = realized P&L / initial risk); the cumulative P&L; win rate, reward:risk and drawdown; the phase, the
limits in force and the mode; breaches and halts; and execution quality: the slippage of every fill
against its intended price, commissions, and live-versus-paper degradation with a warning beyond the
5-10% the procedure calls normal.

Days are New York days. Times in the database are the broker's (a simulated day in tests); the kill
switch stamps its halt and emergency records with the broker's clock when it could read it, else with the
host's. An active halt is shown in every report, whatever its date. Importing this module is light:
matplotlib is imported only inside :func:`equity_chart_png`.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from zoneinfo import ZoneInfo

from . import metrics
from .metrics import Trade, trade_of

if TYPE_CHECKING:
    from .config import Config
    from .phases import PhaseTable
    from .store.repo import Store

__all__ = [
    "DEGRADATION_WARN",
    "KINDS",
    "NY",
    "WINDOW_DAYS",
    "Degradation",
    "EventLine",
    "FillLine",
    "Report",
    "ReportKind",
    "TradeLine",
    "build_report",
    "compose_report",
    "equity_chart_png",
    "fill_lines",
    "render_html",
    "render_json",
    "render_text",
    "report_filename",
    "trade_of",
    "window",
    "write_report",
]

NY: Final = ZoneInfo("America/New_York")
ReportKind = Literal["daily", "week", "month"]
KINDS: Final[tuple[str, ...]] = ("daily", "week", "month")
#: Days covered by each kind, ending on (and including) the report's day.
WINDOW_DAYS: Final[Mapping[str, int]] = {"daily": 1, "week": 7, "month": 30}
#: Procedure 7.1: "5-10% performance degradation is normal"; beyond 10% live is worse than expected.
DEGRADATION_WARN: Final = 0.10
_FORMATS: Final[Mapping[str, str]] = {"txt": "txt", "text": "txt", "json": "json", "html": "html"}
_EXIT_INTENTS: Final = frozenset({"stop", "protective_stop", "target", "exit", "emergency"})
_COMMISSION_NOTE_NONE: Final = "none recorded with the fills (Alpaca charges none on US equities); counted as 0"


# ---------------------------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class TradeLine:
    """One closed position, as the trader's trade review shows it, plus its R."""

    symbol: str
    direction: str
    qty: float
    entry_price: float
    exit_price: float
    stop_price: float | None
    target_price: float | None
    realized_pnl: float
    initial_risk: float | None
    r: float | None  # realized_pnl / initial_risk
    opened_at: datetime
    closed_at: datetime
    exit_reason: str
    phase: str | None = None


@dataclass(frozen=True, slots=True)
class FillLine:
    """One fill and its slippage against the price we meant to get (positive = worse for us)."""

    symbol: str
    side: str  # buy | sell
    qty: float
    price: float
    filled_at: datetime | None
    intent: str  # entry | stop | target | exit | emergency | ...
    intended: float | None  # entry limit, planned stop or target; None for market exits
    intended_label: str  # "entry limit" | "planned stop" | "target" | "market (no intended price)"
    slippage: float | None  # per share
    slippage_cost: float | None  # slippage * qty
    commission: float | None = None  # None: not recorded
    source: str = "fill"  # "fill" (a broker fill activity) | "order" (the order's average: no fill recorded)


@dataclass(frozen=True, slots=True)
class EventLine:
    """A breach, an automatic stop, a halt or an emergency stop."""

    at: datetime | None
    kind: str  # "risk" | "emergency" | "halt"
    severity: str  # breach | stop | emergency | halt
    what: str  # the rule, or "emergency stop" / "halt"
    detail: str


@dataclass(frozen=True, slots=True)
class Degradation:
    """Live against paper on one metric: degradation = (paper - live) / |paper| (0.07 = live 7% worse)."""

    metric: str
    paper: float | None
    live: float | None
    degradation: float | None
    warning: bool


@dataclass(frozen=True)
class Report:
    """Everything a report shows, as plain data (no database handle, no broker)."""

    kind: str
    day: date
    mode: str
    window_start: datetime
    window_end: datetime  # exclusive
    generated_at: datetime
    phase: str | None
    limits_from: str | None
    limits: Mapping[str, float | int] | None
    env_overrides: Mapping[str, float | int]
    trades: tuple[TradeLine, ...]
    cumulative_pnl: float
    # The divisor of the return %: the equity at the start of the window when known, else LIVE_ACCOUNT_SIZE
    # (the procedure's 10000.0); account_size_source says which.
    account_size: float
    wins: int
    losses: int
    win_rate: float | None
    reward_risk: float | None  # math.inf when there are wins and no losses
    average_r: float | None
    max_drawdown: float | None  # fraction of the peak, over the window's end-of-day equity
    daily_equity: tuple[tuple[date, float], ...]
    start_equity: float | None  # equity at the close before the window, when known
    events: tuple[EventLine, ...]
    active_halt: str | None
    fills: tuple[FillLine, ...]
    commissions: float
    commissions_note: str
    degradation: tuple[Degradation, ...]
    paper_trades_compared: int
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    account_size_source: str = "LIVE_ACCOUNT_SIZE"

    @property
    def return_pct(self) -> float | None:
        """Cumulative P&L as a percentage of the account size (the procedure's ``return_pct``)."""
        return None if not self.account_size else 100.0 * self.cumulative_pnl / self.account_size

    @property
    def slippage_total(self) -> float:
        """Money lost to slippage over the fills with an intended price (negative: price improvement)."""
        return sum(f.slippage_cost for f in self.fills if f.slippage_cost is not None)

    @property
    def slippage_per_share(self) -> float | None:
        """Average slippage per share over the fills with an intended price."""
        shares = sum(f.qty for f in self.fills if f.slippage is not None)
        return None if not shares else self.slippage_total / shares

    @property
    def breaches(self) -> int:
        return sum(1 for e in self.events if e.kind == "risk")

    @property
    def title(self) -> str:
        kind = {"daily": "DAILY", "week": "7-DAY", "month": "30-DAY"}.get(self.kind, self.kind.upper())
        return f"CATALYST {kind} REPORT — {self.mode.upper()} — {self.day.isoformat()}"

    @property
    def stem(self) -> str:
        return f"{self.mode}-{self.kind}-{self.day:%Y%m%d}"


# ----------------------------------------------------------------------------------------- helpers


def _f(value: Any) -> float | None:
    if value is None:
        return None
    return float(value)


def window(kind: str, day: date) -> tuple[datetime, datetime]:
    """``[start, end)`` in New York time: daily = that day, week = 7 days, month = 30 days ending that day."""
    if kind not in WINDOW_DAYS:
        raise ValueError(f"unknown report kind {kind!r}; expected one of {', '.join(KINDS)}")
    first = day - timedelta(days=WINDOW_DAYS[kind] - 1)
    start = datetime.combine(first, time(0), tzinfo=NY)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=NY)
    return start, end


def report_filename(mode: str, kind: str, day: date, ext: str) -> str:
    return f"{mode}-{kind}-{day:%Y%m%d}.{ext}"


def _trade_line(row: Mapping[str, Any], trade: Trade) -> TradeLine:
    return TradeLine(
        symbol=trade.symbol,
        direction=str(row.get("direction") or "long"),
        qty=trade.qty,
        entry_price=trade.entry_price,
        exit_price=trade.exit_price,
        stop_price=trade.stop_price,
        target_price=trade.target_price,
        realized_pnl=trade.realized_pnl,
        initial_risk=trade.initial_risk,
        r=metrics.r_multiple(trade) if trade.initial_risk else None,
        opened_at=trade.opened_at,
        closed_at=trade.closed_at,
        exit_reason=trade.exit_reason,
        phase=trade.phase,
    )


def _average_r(trades: Sequence[Trade]) -> float | None:
    rs = [r for t in trades if t.initial_risk and (r := metrics.r_multiple(t)) is not None]
    return sum(rs) / len(rs) if rs else None


def _intended(order: Mapping[str, Any], position: Mapping[str, Any]) -> tuple[float | None, str]:
    """The price an order meant to get: the entry's limit, the planned stop, the planned target."""
    intent = str(order.get("intent") or "")
    if intent == "entry":
        limit = _f(order.get("limit_price"))
        return (limit, "entry limit") if limit is not None else (None, "market (no intended price)")
    if intent in ("stop", "protective_stop"):
        stop = _f(position.get("stop_price")) or _f(order.get("stop_price"))
        return (stop, "planned stop") if stop is not None else (None, "stop (no price recorded)")
    if intent == "target":
        target = _f(position.get("target_price")) or _f(order.get("limit_price")) or _f(order.get("take_profit"))
        return (target, "target") if target is not None else (None, "target (no price recorded)")
    return None, "market (no intended price)"


def fill_lines(
    position: Mapping[str, Any],
    orders: Sequence[Mapping[str, Any]],
    fills_by_order: Mapping[str, Sequence[Mapping[str, Any]]],
) -> list[FillLine]:
    """The fills of one position's orders, each with its intended price and slippage.

    ``orders`` are the position's orders (its entry and the orders that sold it); ``fills_by_order`` maps an
    order's client id to its fill rows. An order that filled with no fill activity recorded counts once at
    its average fill price (``source="order"``). Pure.
    """
    out: list[FillLine] = []
    for order in orders:
        coid = str(order.get("client_order_id"))
        intended, label = _intended(order, position)
        rows = list(fills_by_order.get(coid, ()))
        if not rows and float(order.get("filled_qty") or 0) > 0 and order.get("filled_avg_price") is not None:
            rows = [
                {
                    "side": order.get("side"),
                    "qty": order["filled_qty"],
                    "price": order["filled_avg_price"],
                    "filled_at": order.get("updated_at"),
                    "_source": "order",
                }
            ]
        for fill in rows:
            side = "buy" if str(fill.get("side") or order.get("side")) == "buy" else "sell"
            qty = float(fill["qty"])
            price = float(fill["price"])
            slip = None if intended is None else metrics.slippage(intended, price, side)
            commission = _f(fill.get("commission")) if "commission" in fill else None
            out.append(FillLine(
                symbol=str(position.get("symbol") or order.get("symbol") or fill.get("symbol")),
                side=side, qty=qty, price=price, filled_at=fill.get("filled_at"),
                intent=str(order.get("intent") or ""), intended=intended, intended_label=label,
                slippage=slip, slippage_cost=None if slip is None else slip * qty,
                commission=commission, source=str(fill.get("_source") or "fill"),
            ))  # fmt: skip
    return out


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _degradation(paper: Sequence[Trade], live: Sequence[Trade]) -> tuple[Degradation, ...]:
    pairs = (
        ("win rate", metrics.win_rate(paper), metrics.win_rate(live)),
        ("R:R", metrics.reward_risk(paper), metrics.reward_risk(live)),
        ("average R", _average_r(paper), _average_r(live)),
    )
    out = []
    for name, p, lv in pairs:
        deg = None
        if _finite(p) is not None and _finite(lv) is not None:
            deg = metrics.degradation(p, lv)
        out.append(Degradation(name, p, lv, deg, deg is not None and deg > DEGRADATION_WARN))
    return tuple(out)


def _describe_detail(detail: Any) -> str:
    if isinstance(detail, Mapping):
        return ", ".join(f"{k}={v}" for k, v in detail.items() if v not in (None, "", [], {}))
    return "" if detail is None else str(detail)


def _risk_event_line(row: Mapping[str, Any]) -> EventLine:
    detail = _describe_detail(row.get("detail"))
    symbol = row.get("symbol")
    if symbol:
        detail = f"{symbol}: {detail}" if detail else str(symbol)
    return EventLine(
        at=row.get("occurred_at"),
        kind="risk",
        severity=str(row.get("severity")),
        what=str(row.get("rule")),
        detail=detail,
    )


def _emergency_line(row: Mapping[str, Any]) -> EventLine:
    parts = [f"reason: {row.get('reason')}", f"outcome: {row.get('outcome')}"]
    if row.get("positions_before") is not None:
        parts.append(f"positions before: {row['positions_before']}")
    parts.append("flat verified" if row.get("flat_verified") else "flat NOT verified")
    return EventLine(
        at=row.get("occurred_at"),
        kind="emergency",
        severity="emergency",
        what="emergency stop",
        detail="; ".join(parts),
    )


def _in(at: Any, start: datetime, end: datetime) -> bool:
    return isinstance(at, datetime) and start <= at < end


# ----------------------------------------------------------------------------------------- building


def compose_report(
    *,
    kind: str,
    day: date,
    mode: str,
    positions: Sequence[Mapping[str, Any]],
    daily_equity: Sequence[tuple[date, float]] = (),
    start_equity: float | None = None,
    events: Sequence[EventLine] = (),
    active_halt: str | None = None,
    fills: Sequence[FillLine] = (),
    paper_positions: Sequence[Mapping[str, Any]] | None = None,
    phase_info: Mapping[str, Any] | None = None,
    account_size: float = 10_000.0,
    account_size_source: str = "LIVE_ACCOUNT_SIZE",
    generated_at: datetime | None = None,
    notes: Sequence[str] = (),
) -> Report:
    """A :class:`Report` from plain data (pure; :func:`build_report` feeds it from the database).

    ``positions``: the closed positions of the window (rows with symbol, direction, qty, entry_price,
    exit_price, stop_price, target_price, initial_risk, realized_pnl, opened_at, closed_at, exit_reason);
    ``daily_equity``: end-of-day equity in the window, oldest first; ``start_equity``: the equity at the
    close before the window (the drawdown's first point); ``paper_positions``: the paper record to compare a
    live report with (None: no comparison); ``phase_info``: ``status.phase_and_limits``'s answer.
    """
    start, end = window(kind, day)
    rows = sorted(positions, key=lambda r: (r["closed_at"], r.get("position_id") or 0))
    trades = [trade_of(r) for r in rows]
    lines = tuple(_trade_line(r, t) for r, t in zip(rows, trades, strict=True))
    curve = ([start_equity] if start_equity is not None else []) + [e for _, e in daily_equity]
    info = dict(phase_info or {})
    warnings: list[str] = []
    all_notes = list(notes)

    degradation: tuple[Degradation, ...] = ()
    compared = 0
    if mode == "live" and paper_positions is not None:
        paper_trades = [trade_of(r) for r in paper_positions]
        compared = len(paper_trades)
        degradation = _degradation(paper_trades, trades)
        worse = [d for d in degradation if d.warning and d.degradation is not None]
        if worse:
            listed = ", ".join(
                f"{d.metric} {d.degradation:.0%} worse "
                f"({_deg_value(d.metric, d.live)} vs paper {_deg_value(d.metric, d.paper)})"
                for d in worse
                if d.degradation is not None
            )
            warnings.append(
                f"live is worse than paper beyond the 5-10% the procedure expects: {listed}; tighten entries, "
                "avoid illiquid symbols, use limit orders, factor commissions into sizing (procedure 7.1)"
            )
    elif mode == "live":
        all_notes.append("no paper record to compare with")
    else:
        all_notes.append("paper mode: the live-versus-paper comparison applies to live reports")

    recorded = [f.commission for f in fills if f.commission is not None]
    commissions = float(sum(recorded))
    commissions_note = "from the recorded fills" if recorded else _COMMISSION_NOTE_NONE
    if any(f.source == "order" for f in fills):
        all_notes.append("some fills were not recorded yet: their order's average fill price was used")
    unknown_r = [t.symbol for t in lines if t.r is None]
    if unknown_r:
        warnings.append(f"no initial risk recorded (R unknown) for: {', '.join(unknown_r)}")
    if active_halt:
        warnings.append(f"trading is HALTED: {active_halt}")
    breaches = [e for e in events if e.kind == "risk"]
    if breaches:
        warnings.append(f"{len(breaches)} risk breach/stop event(s) in the window")
    if info.get("note"):
        warnings.append(str(info["note"]))

    return Report(
        kind=kind,
        day=day,
        mode=mode,
        window_start=start,
        window_end=end,
        generated_at=generated_at or datetime.now(UTC),
        phase=info.get("phase"),
        limits_from=info.get("limits_from"),
        limits=info.get("limits"),
        env_overrides=dict(info.get("env_overrides") or {}),
        trades=lines,
        cumulative_pnl=metrics.total_pnl(trades),
        account_size=account_size,
        account_size_source=account_size_source,
        wins=sum(1 for t in trades if t.realized_pnl > 0),
        losses=sum(1 for t in trades if t.realized_pnl < 0),
        win_rate=metrics.win_rate(trades),
        reward_risk=metrics.reward_risk(trades),
        average_r=_average_r(trades),
        max_drawdown=metrics.max_drawdown(curve) if curve else None,
        daily_equity=tuple(daily_equity),
        start_equity=start_equity,
        events=tuple(sorted(events, key=lambda e: e.at or datetime.min.replace(tzinfo=UTC))),
        active_halt=active_halt,
        fills=tuple(fills),
        commissions=commissions,
        commissions_note=commissions_note,
        degradation=degradation,
        paper_trades_compared=compared,
        notes=tuple(all_notes),
        warnings=tuple(warnings),
    )


def _position_orders(
    position: Mapping[str, Any],
    by_coid: Mapping[str, Mapping[str, Any]],
    by_parent: Mapping[str, list[Mapping[str, Any]]],
    by_position: Mapping[int, list[Mapping[str, Any]]],
) -> list[Mapping[str, Any]]:
    """The position's entry and the orders that sold it (bracket legs, protective stops, exits)."""
    entry_coid = position.get("entry_client_order_id")
    found: dict[str, Mapping[str, Any]] = {}
    if entry_coid and entry_coid in by_coid:
        found[str(entry_coid)] = by_coid[str(entry_coid)]
    for o in [*by_parent.get(str(entry_coid), []), *by_position.get(int(position["position_id"]), [])]:
        if o.get("intent") in _EXIT_INTENTS or o.get("intent") == "entry":
            found[str(o["client_order_id"])] = o
    return sorted(found.values(), key=lambda o: o.get("created_at") or datetime.min.replace(tzinfo=UTC))


def _executions(store: Store, positions: Sequence[Mapping[str, Any]], mode: str) -> list[FillLine]:
    if not positions:
        return []
    from .store.repo import ORDER_STATES

    orders = store.orders_in_states(ORDER_STATES, mode=mode)
    by_coid = {str(o["client_order_id"]): o for o in orders}
    by_parent: dict[str, list[Mapping[str, Any]]] = {}
    by_position: dict[int, list[Mapping[str, Any]]] = {}
    for o in orders:
        if o.get("parent_client_order_id"):
            by_parent.setdefault(str(o["parent_client_order_id"]), []).append(o)
        if o.get("position_id") is not None:
            by_position.setdefault(int(o["position_id"]), []).append(o)
    out: list[FillLine] = []
    for pos in positions:
        mine = [
            o for o in _position_orders(pos, by_coid, by_parent, by_position) if float(o.get("filled_qty") or 0) > 0
        ]
        fills = {str(o["client_order_id"]): store.fills_for_order(
                     client_order_id=str(o["client_order_id"]), broker_order_id=o.get("broker_order_id"))
                 for o in mine}  # fmt: skip
        out.extend(fill_lines(pos, mine, fills))
    return out


def build_report(
    store: Store,
    kind: str,
    day: date,
    mode: str,
    table: PhaseTable,
    config: Config,
    *,
    generated_at: datetime | None = None,
) -> Report:
    """Read the window's records from ``store`` and compose the report.

    ``kind``: ``"daily"`` (that New York day), ``"week"`` (7 days ending that day) or ``"month"`` (30 days);
    ``mode``: ``"paper"`` or ``"live"``. The phase and limits are those in force now (``config``'s mode and
    env overrides, the phase recorded in the database); each trade keeps the phase it was opened in.
    """
    from .config import LimitsError
    from .status import phase_and_limits

    start, end = window(kind, day)
    positions = store.closed_positions(since=start, until=end, mode=mode)
    equity_rows = store.daily_equity(mode=mode, since=start.date() - timedelta(days=10))
    before = [r for r in equity_rows if r["date"] < start.date()]
    inside = [(r["date"], float(r["equity"])) for r in equity_rows if start.date() <= r["date"] <= day]
    start_equity: float | None = float(before[-1]["equity"]) if before else None
    if start_equity is None:
        first = next((r for r in equity_rows if start.date() <= r["date"] <= day), None)
        if first is not None and first.get("last_equity") is not None:
            start_equity = float(first["last_equity"])

    events = [
        _risk_event_line(r)
        for r in store.risk_events_since(start, severities=("breach", "stop"), mode=mode)
        if _in(r.get("occurred_at"), start, end)
    ]
    events += [_emergency_line(r) for r in store.emergency_events(limit=500) if _in(r.get("occurred_at"), start, end)]
    halt = store.active_halt()
    active_halt = None
    if halt is not None:
        at = halt.get("halted_at")
        when = at.astimezone(NY).strftime("%Y-%m-%d %H:%M %Z") if isinstance(at, datetime) else str(at)
        active_halt = f"since {when} ({halt.get('source')}): {halt.get('reason')}"
        if _in(at, start, end):
            events.append(
                EventLine(
                    at=at,
                    kind="halt",
                    severity="halt",
                    what="halt",
                    detail=f"{halt.get('source')}: {halt.get('reason')}",
                )
            )

    notes: list[str] = []
    try:
        phase_info: dict[str, Any] = phase_and_limits(config, table, store.current_phase())
    except (LimitsError, KeyError) as exc:
        phase_info = {"phase": store.current_phase(), "limits": None, "note": f"limits refused: {exc}"}
    if mode != config.mode:
        notes.append(
            f"a {mode} report while the agent is configured for {config.mode}: "
            "the phase and limits shown are those in force now"
        )

    paper_positions = store.closed_positions(mode="paper") if mode == "live" else None
    fills = _executions(store, positions, mode)
    return compose_report(
        kind=kind, day=day, mode=mode, positions=positions, daily_equity=inside, start_equity=start_equity,
        events=events, active_halt=active_halt, fills=fills, paper_positions=paper_positions,
        phase_info=phase_info, generated_at=generated_at, notes=notes,
        account_size=start_equity if start_equity else config.live_account_size,
        account_size_source="equity at the start" if start_equity else "LIVE_ACCOUNT_SIZE",
    )  # fmt: skip


# ---------------------------------------------------------------------------------------- rendering


def _num(value: float | None, fmt: str = ".2f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if math.isinf(value):
        return "∞"
    return format(value, fmt)


def _deg_value(metric: str, value: float | None) -> str:
    return _pct(value) if metric == "win rate" else _num(value)


def _price(value: float | None) -> str:
    """A price with 2 to 4 decimals (100.00, 48.90, 100.0125)."""
    if value is None:
        return "n/a"
    text = f"{value:.4f}"
    while text.endswith("0") and len(text.split(".")[1]) > 2:
        text = text[:-1]
    return text


def _money(value: float | None, signed: bool = True) -> str:
    if value is None:
        return "n/a"
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def _pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.{digits}f}%"


def _rr(value: float | None) -> str:
    if value is None:
        return "n/a (no winning trade)"
    if math.isinf(value):
        return "∞ (no losing trade)"
    return f"{value:.2f}"


def _ts(value: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
    return "n/a" if value is None else value.astimezone(NY).strftime(fmt)


def _limits_text(limits: Mapping[str, float | int] | None) -> str:
    if not limits:
        return "none in force"
    parts = []
    for key, value in limits.items():
        parts.append(f"{key} {value}" if key == "max_positions" else f"{key} {_pct(float(value), 2)}")
    return " · ".join(parts)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], indent: str = "  ") -> list[str]:
    body = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in body) for i in range(len(header))]
    out = []
    for row in body:
        cells = [
            c.ljust(w) if i == 0 or not _numeric(c) else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append(indent + "  ".join(cells).rstrip())
    return out


def _numeric(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or cell[0] in "+-") and cell not in ("-",)


def _trade_rows(report: Report) -> list[list[str]]:
    return [[t.symbol, t.direction, _num(t.qty, "g"), _num(t.entry_price), _num(t.exit_price),
             _money(t.realized_pnl), _num(t.r, "+.2f"), t.exit_reason, _ts(t.opened_at), _ts(t.closed_at)]
            for t in report.trades]  # fmt: skip


_TRADE_HEADER: Final = ("symbol", "dir", "qty", "entry", "exit", "P&L", "R", "exit", "opened", "closed")
_FILL_HEADER: Final = ("symbol", "side", "qty", "price", "intended", "vs", "slip/sh", "slip $")


def _fill_rows(report: Report) -> list[list[str]]:
    return [[f.symbol, f.side, _num(f.qty, "g"), _price(f.price),
             _price(f.intended), f.intended_label, _num(f.slippage, "+.4f"), _money(f.slippage_cost)]
            for f in report.fills]  # fmt: skip


def _summary_lines(report: Report) -> list[str]:
    ret = report.return_pct
    return [
        f"cumulative P&L: {_money(report.cumulative_pnl)}"
        + (f" ({ret:+.3f}% of {report.account_size:,.2f}, {report.account_size_source})" if ret is not None else ""),
        f"trades: {len(report.trades)} · wins {report.wins} · losses {report.losses} · "
        f"win rate {_pct(report.win_rate)} · R:R {_rr(report.reward_risk)} · "
        f"average R {_num(report.average_r, '+.2f')}",
        f"max drawdown: {_pct(report.max_drawdown, 2)} (end-of-day equity"
        + (f", from {report.start_equity:,.2f}" if report.start_equity is not None else "")
        + (f" to {report.daily_equity[-1][1]:,.2f})" if report.daily_equity else ")"),
    ]


def _execution_lines(report: Report) -> list[str]:
    priced = [f for f in report.fills if f.slippage is not None]
    lines = [
        f"fills: {len(report.fills)} ({len(priced)} with an intended price) · slippage "
        f"{_money(report.slippage_total)} total, {_num(report.slippage_per_share, '+.4f')}/share "
        "(positive = worse than intended)",
        f"commissions: {_money(report.commissions, signed=False)} ({report.commissions_note})",
    ]
    return lines


def _degradation_lines(report: Report) -> list[str]:
    if not report.degradation:
        return []
    out = [f"live vs paper ({report.paper_trades_compared} paper trades; 5-10% worse is normal):"]
    for d in report.degradation:
        fmt_v = _pct if d.metric == "win rate" else (lambda v: _num(v, ".2f"))
        deg = "n/a" if d.degradation is None else f"{d.degradation:+.0%}"
        flag = "  ⚠ worse than 10%" if d.warning else ""
        out.append(f"  {d.metric}: live {fmt_v(d.live)} · paper {fmt_v(d.paper)} · degradation {deg}{flag}")
    return out


def _event_text(e: EventLine) -> str:
    return f"{_ts(e.at, '%Y-%m-%d %H:%M')}  {e.severity.upper()}  {e.what}: {e.detail}".rstrip(": ")


def render_text(report: Report) -> str:
    """The report as plain text (what the end-of-day routine writes to ``reports/``)."""
    end_day = (report.window_end - timedelta(days=1)).date()
    out = [
        report.title,
        f"window: {report.window_start.date()} → {end_day} (America/New_York)"
        f" · generated {report.generated_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "PHASE & LIMITS",
        f"  mode: {report.mode} · phase: {report.phase or 'none'}"
        + (f" (limits of {report.limits_from})" if report.limits_from and report.limits_from != report.phase else ""),
        f"  limits: {_limits_text(report.limits)}",
    ]
    if report.env_overrides:
        out.append("  tightened by: " + ", ".join(f"{k}={v}" for k, v in report.env_overrides.items()))
    out += ["", f"TRADES ({len(report.trades)})"]
    out += _table(_TRADE_HEADER, _trade_rows(report)) if report.trades else ["  no closed trades"]
    out += ["", "SUMMARY", *("  " + line for line in _summary_lines(report))]
    out += ["", "BREACHES & HALTS"]
    if report.active_halt:
        out.append(f"  ACTIVE HALT {report.active_halt}")
    out += [f"  {_event_text(e)}" for e in report.events]
    if not report.events and not report.active_halt:
        out.append("  none")
    out += ["", "EXECUTION QUALITY", *("  " + line for line in _execution_lines(report))]
    if report.fills:
        out += _table(_FILL_HEADER, _fill_rows(report))
    out += ["  " + line for line in _degradation_lines(report)]
    if report.warnings:
        out += ["", "WARNINGS", *(f"  ⚠ {w}" for w in report.warnings)]
    if report.notes:
        out += ["", "NOTES", *(f"  {n}" for n in report.notes)]
    return "\n".join(out) + "\n"


def _json_num(value: float | None) -> float | str | None:
    """JSON has no infinity: an infinite R:R (wins, no losses) is the string ``"inf"``; NaN is null."""
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def render_json(report: Report) -> dict[str, Any]:
    """The report as JSON-able data (datetimes ISO 8601; an infinite R:R is ``"inf"``)."""
    return {
        "kind": report.kind,
        "day": report.day.isoformat(),
        "mode": report.mode,
        "window": {"start": _iso(report.window_start), "end": _iso(report.window_end), "tz": "America/New_York"},
        "generated_at": _iso(report.generated_at),
        "phase": report.phase,
        "limits_from": report.limits_from,
        "limits": dict(report.limits) if report.limits is not None else None,
        "env_overrides": dict(report.env_overrides),
        "trades": [
            {
                "symbol": t.symbol,
                "direction": t.direction,
                "qty": t.qty,
                "entry_price": t.entry_price,
                "exit_price": t.exit_price,
                "stop_price": t.stop_price,
                "target_price": t.target_price,
                "realized_pnl": t.realized_pnl,
                "initial_risk": t.initial_risk,
                "r": _json_num(t.r),
                "opened_at": _iso(t.opened_at),
                "closed_at": _iso(t.closed_at),
                "exit_reason": t.exit_reason,
                "phase": t.phase,
            }
            for t in report.trades
        ],
        "summary": {
            "trades": len(report.trades),
            "wins": report.wins,
            "losses": report.losses,
            "cumulative_pnl": round(report.cumulative_pnl, 2),
            "return_pct": None if report.return_pct is None else round(report.return_pct, 3),
            "account_size": report.account_size,
            "account_size_source": report.account_size_source,
            "win_rate": _json_num(report.win_rate),
            "reward_risk": _json_num(report.reward_risk),
            "average_r": _json_num(report.average_r),
            "max_drawdown": _json_num(report.max_drawdown),
            "start_equity": report.start_equity,
            "daily_equity": [{"date": d.isoformat(), "equity": e} for d, e in report.daily_equity],
        },
        "breaches_and_halts": {
            "active_halt": report.active_halt,
            "breaches": report.breaches,
            "events": [
                {"at": _iso(e.at), "kind": e.kind, "severity": e.severity, "what": e.what, "detail": e.detail}
                for e in report.events
            ],
        },
        "execution": {
            "fills": [
                {
                    "symbol": f.symbol,
                    "side": f.side,
                    "qty": f.qty,
                    "price": f.price,
                    "filled_at": _iso(f.filled_at),
                    "intent": f.intent,
                    "intended": f.intended,
                    "intended_label": f.intended_label,
                    "slippage": f.slippage,
                    "slippage_cost": f.slippage_cost,
                    "commission": f.commission,
                    "source": f.source,
                }
                for f in report.fills
            ],
            "slippage_total": round(report.slippage_total, 4),
            "slippage_per_share": _json_num(report.slippage_per_share),
            "commissions": report.commissions,
            "commissions_note": report.commissions_note,
            "degradation": [
                {
                    "metric": d.metric,
                    "paper": _json_num(d.paper),
                    "live": _json_num(d.live),
                    "degradation": _json_num(d.degradation),
                    "warning": d.warning,
                }
                for d in report.degradation
            ],
            "paper_trades_compared": report.paper_trades_compared,
        },
        "warnings": list(report.warnings),
        "notes": list(report.notes),
    }


_CSS: Final = (
    "body{font-family:system-ui,sans-serif;margin:1em;max-width:60em}"
    "table{border-collapse:collapse;font-size:.9em}td,th{padding:.2em .5em;border-bottom:1px solid #ddd}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}.warn{color:#a40}.bad{color:#b00}"
    "img{max-width:100%}"
)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{html.escape(c)}</td>' if i and _numeric(c) else f"<td>{html.escape(c)}</td>"
                         for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )  # fmt: skip
    return f"<table><tr>{head}</tr>{body}</table>"


def _ul(items: Iterable[str], cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return "<ul>" + "".join(f"<li{attr}>{html.escape(i)}</li>" for i in items) + "</ul>"


def render_html(report: Report, png_path: Path | None) -> str:
    """The report as one HTML page. The equity chart at ``png_path`` is embedded (a data: URI, so the page
    reads on its own on a phone) and linked by its file name (it sits beside the HTML)."""
    e = html.escape
    parts = [
        '<!doctype html><html><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(report.title)}</h1>",
        f"<p>window {e(str(report.window_start.date()))} → "
        f"{e(str((report.window_end - timedelta(days=1)).date()))} (America/New_York)</p>",
        "<h2>Phase &amp; limits</h2>",
        f"<p>mode <b>{e(report.mode)}</b> · phase <b>{e(report.phase or 'none')}</b>"
        + (f" (limits of {e(report.limits_from)})" if report.limits_from and report.limits_from != report.phase else "")
        + f"<br>limits: {e(_limits_text(report.limits))}</p>",
    ]
    if report.warnings:
        parts += ["<h2>Warnings</h2>", _ul(report.warnings, "warn")]
    parts += ["<h2>Summary</h2>", _ul(_summary_lines(report))]
    if png_path is not None and png_path.is_file():
        data = base64.b64encode(png_path.read_bytes()).decode("ascii")
        parts.append(
            f'<p><a href="{e(png_path.name)}"><img alt="equity curve" src="data:image/png;base64,{data}"></a></p>'
        )
    parts.append(f"<h2>Trades ({len(report.trades)})</h2>")
    parts.append(_html_table(_TRADE_HEADER, _trade_rows(report)) if report.trades else "<p>no closed trades</p>")
    parts.append("<h2>Breaches &amp; halts</h2>")
    items = ([f"ACTIVE HALT {report.active_halt}"] if report.active_halt else []) + [
        _event_text(ev) for ev in report.events
    ]
    parts.append(_ul(items, "bad") if items else "<p>none</p>")
    parts += ["<h2>Execution quality</h2>", _ul(_execution_lines(report))]
    if report.fills:
        parts.append(_html_table(_FILL_HEADER, _fill_rows(report)))
    deg = _degradation_lines(report)
    if deg:
        parts += [f"<p>{e(deg[0])}</p>", _ul(line.strip() for line in deg[1:])]
    if report.notes:
        parts += ["<h2>Notes</h2>", _ul(report.notes)]
    parts.append(f"<p><small>generated {e(_iso(report.generated_at) or '')}</small></p></body></html>")
    return "\n".join(parts) + "\n"


def equity_chart_png(
    daily_equity: Sequence[tuple[date, float]], path: Path, *, start_equity: float | None = None, title: str = "equity"
) -> Path:
    """Draw the end-of-day equity curve to ``path`` (PNG) with matplotlib's Agg backend; returns ``path``.

    matplotlib is imported here, not at module level, and only through its object API (no pyplot, no
    global backend switch), so that reports stay cheap to import and safe inside other programs.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    fig = Figure(figsize=(7.0, 3.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    points = list(daily_equity)
    if points:
        # one point per trading day (no empty weekends), after the close before the window when known
        labels = [f"{d:%m-%d}" for d, _ in points]
        ys = [v for _, v in points]
        if start_equity is not None:
            labels.insert(0, "start")
            ys.insert(0, start_equity)
        xs = list(range(len(ys)))
        ax.plot(xs, ys, marker="o", linewidth=1.5)
        ax.axhline(ys[0], color="grey", linewidth=0.8, linestyle="--")
        step = max(1, len(xs) // 10)
        ax.set_xticks(xs[::step], labels[::step])
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        ax.set_xlim(-0.5, len(xs) - 0.5)
    else:
        ax.text(0.5, 0.5, "no equity recorded in this window", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
    return path


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")


def write_report(report: Report, fmt: str, report_dir: Path) -> Path:
    """Write ``report`` as ``{mode}-{kind}-{YYYYMMDD}.{txt|json|html}`` in ``report_dir``; returns the path.

    ``fmt``: ``"txt"`` (or ``"text"``), ``"json"`` or ``"html"``. The HTML gets its equity chart as
    ``{mode}-{kind}-{YYYYMMDD}.png`` beside it; if matplotlib is missing or fails, the page is written
    without the chart and says so. Files are written to a temporary name and renamed into place.
    """
    ext = _FORMATS.get(fmt)
    if ext is None:
        raise ValueError(f"unknown report format {fmt!r}; expected txt, json or html")
    path = Path(report_dir) / report_filename(report.mode, report.kind, report.day, ext)
    if ext == "txt":
        _write_atomic(path, render_text(report))
    elif ext == "json":
        _write_atomic(path, json.dumps(render_json(report), indent=2, default=_json_default) + "\n")
    else:
        png: Path | None = path.with_suffix(".png")
        assert png is not None
        try:
            equity_chart_png(
                report.daily_equity,
                png,
                start_equity=report.start_equity,
                title=f"{report.mode} equity, {report.window_start.date()} → {report.day}",
            )
        except Exception as exc:  # a missing chart must not cost the report
            png = None
            report = _with_note(report, f"equity chart not drawn: {type(exc).__name__}: {exc}")
        _write_atomic(path, render_html(report, png))
    return path


def _with_note(report: Report, note: str) -> Report:
    from dataclasses import replace

    return replace(report, notes=(*report.notes, note))
