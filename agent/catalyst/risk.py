"""The risk engine: pure functions over plain data (no broker, no database, no clock).

Sizing, the entry check (max positions, account risk, daily loss, duplicates) and the procedure's
IMMEDIATE STOP / INVESTIGATE triggers (PRIMARY-004 section 4.2). Every refusal and every trigger names the
rule it applies. When an input makes a rule impossible to evaluate (non-finite prices, equity <= 0, no
previous close), the engine fails safe: it refuses entries or fires the trigger rather than guess.

Thresholds, chosen and documented here:

* daily loss: breached when ``daily_loss >= max_daily_loss`` (the procedure says "exceeds"; we stop at the
  limit itself, one cent earlier rather than later);
* single position: breached when its unrealized loss is strictly ``> single_position_loss_limit x equity``
  (the procedure's "> 2%");
* account risk: an entry is refused when open risk + the new trade's risk ``> max_account_risk x equity``
  (reaching the limit exactly is allowed, which is what makes 3 x 0.5% = 1.5% fit);
* positions: refused when open + pending distinct symbols ``>= max_positions``;
* execution failures: stop when consecutive failures ``>= execution_failure_limit``;
* win rate: investigate when, over ``investigate_min_trades`` or more closed trades, wins / trades
  ``< investigate_win_rate`` (a trade with P&L exactly 0 is not a win).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from catalyst.phases import Limits, PhaseTable

__all__ = [
    "AccountState",
    "Decision",
    "PendingEntry",
    "PositionState",
    "TradeIdea",
    "Trigger",
    "check_entry",
    "daily_loss",
    "daily_loss_breached",
    "drawdown",
    "evaluate_triggers",
    "investigate_warnings",
    "is_major_loss",
    "missing_stops",
    "open_risk",
    "position_loss",
    "position_loss_breaches",
    "position_risk",
    "position_size",
    "trade_risk",
]

# Above this many shares float arithmetic stops being exact per share; such sizes are treated as invalid.
_MAX_EXACT_SHARES = 2**52

Severity = Literal["stop", "investigate"]


@dataclass(frozen=True, slots=True)
class AccountState:
    """The broker account: ``last_equity`` is the broker's equity at the previous close."""

    equity: float
    last_equity: float
    buying_power: float


@dataclass(frozen=True, slots=True)
class PositionState:
    """An open position (``qty`` < 0 for a short); ``stop_price`` None when no stop order protects it."""

    symbol: str
    qty: int
    entry_price: float
    current_price: float
    stop_price: float | None


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """An entry order submitted but not (fully) filled; it counts toward positions and risk."""

    symbol: str
    qty: int
    entry_price: float
    stop_price: float | None


@dataclass(frozen=True, slots=True)
class TradeIdea:
    """A long entry proposed by the strategy: buy at ``entry_price``, stop below, target above."""

    symbol: str
    entry_price: float
    stop_price: float
    target_price: float


@dataclass(frozen=True, slots=True)
class Decision:
    """The risk engine's answer to an entry: ``qty`` is 0 when refused; ``reasons`` name every rule hit."""

    allowed: bool
    qty: int
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Trigger:
    """A procedure 4.2 trigger: ``stop`` = IMMEDIATE STOP, ``investigate`` = alert and keep running."""

    rule: str
    detail: str
    severity: Severity


# ------------------------------------------------------------------------------------------ helpers


def _finite(*values: float) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _pct(value: float) -> str:
    return f"{value * 100:.2f}%"


def _max_qty(budget: float, per_share: float) -> int | None:
    """Largest whole q >= 0 with ``q * per_share <= budget`` in float arithmetic; None if out of range."""
    if not _finite(budget, per_share) or per_share <= 0:
        return None
    if budget < 0:
        return 0
    quotient = budget / per_share
    if not math.isfinite(quotient) or quotient > _MAX_EXACT_SHARES:
        return None
    q = math.floor(quotient)
    while q > 0 and q * per_share > budget:
        q -= 1
    while (q + 1) * per_share <= budget:
        q += 1
    return q


def _valid_stop(stop: float | None) -> bool:
    return stop is not None and _finite(stop) and stop > 0


def _symbols(items: Iterable[PositionState | PendingEntry]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item.qty != 0 and item.symbol not in seen:
            seen.append(item.symbol)
    return seen


# ------------------------------------------------------------------------------------------- sizing


def position_size(
    equity: float,
    risk_per_trade: float,
    entry: float,
    stop: float,
    buying_power: float,
    cost_per_share: float = 0.0,
) -> int:
    """Whole shares for a long entry at ``entry`` with its stop at ``stop``.

    ``floor(equity x risk_per_trade / (entry - stop + cost_per_share))``, capped by
    ``floor(buying_power / entry)``; ``cost_per_share`` (commission + expected slippage per share) makes
    friction count against the risk budget. Returns 0 when ``stop >= entry`` or any input is invalid
    (non-finite, equity/entry/stop <= 0, risk_per_trade outside (0, 1), negative cost or buying power).
    Guarantees (in float arithmetic): ``qty x (entry - stop) <= equity x risk_per_trade``,
    ``qty x (entry - stop + cost_per_share) <= equity x risk_per_trade`` and ``qty x entry <= buying_power``.
    """
    if not _finite(equity, risk_per_trade, entry, stop, buying_power, cost_per_share):
        return 0
    if equity <= 0 or not 0 < risk_per_trade < 1 or entry <= 0 or stop <= 0 or stop >= entry:
        return 0
    if cost_per_share < 0 or buying_power <= 0:
        return 0
    budget = equity * risk_per_trade
    caps = (
        _max_qty(budget, entry - stop),
        _max_qty(budget, entry - stop + cost_per_share),
        _max_qty(buying_power, entry),
    )
    if any(cap is None for cap in caps):
        return 0
    return min(cap for cap in caps if cap is not None)


def trade_risk(qty: int, entry: float, stop: float | None) -> float:
    """Dollars at risk between price and stop: ``max(0, entry - stop) x qty`` (short: ``stop - entry``).

    Without a valid stop the whole position value is at risk. Non-finite inputs give ``inf``.
    """
    if not _finite(qty, entry) or entry < 0:
        return math.inf
    shares = abs(qty)
    if not _valid_stop(stop):
        return shares * entry
    assert stop is not None
    per_share = entry - stop if qty >= 0 else stop - entry
    return max(0.0, per_share) * shares


def position_risk(position: PositionState) -> float:
    """A position's open risk, measured from its current price to its stop."""
    return trade_risk(position.qty, position.current_price, position.stop_price)


def open_risk(positions: Sequence[PositionState], pending: Sequence[PendingEntry]) -> float:
    """Σ max(0, price - stop) x qty: current price for positions, entry price for pending entries.

    A position or pending entry without a stop counts its full value as risk.
    """
    total = sum(position_risk(p) for p in positions)
    total += sum(trade_risk(e.qty, e.entry_price, e.stop_price) for e in pending)
    return float(total)


# ------------------------------------------------------------------------------------------- losses


def daily_loss(account: AccountState) -> float:
    """Today's loss as a fraction of the previous close: ``max(0, (last_equity - equity) / last_equity)``.

    Fails safe: ``inf`` when it cannot be measured (non-finite values or ``last_equity <= 0``).
    """
    if not _finite(account.equity, account.last_equity) or account.last_equity <= 0:
        return math.inf
    return max(0.0, (account.last_equity - account.equity) / account.last_equity)


def daily_loss_breached(account: AccountState, limits: Limits) -> bool:
    """True when ``daily_loss >= max_daily_loss`` (at the limit counts; unmeasurable counts)."""
    return daily_loss(account) >= limits.max_daily_loss


def position_loss(position: PositionState) -> float:
    """Unrealized loss in dollars (0 for a winner): ``max(0, -(current - entry) x qty)``."""
    if not _finite(position.entry_price, position.current_price, position.qty):
        return math.inf
    return max(0.0, -(position.current_price - position.entry_price) * position.qty)


def position_loss_breaches(
    positions: Sequence[PositionState], equity: float, limit: float = 0.02
) -> list[str]:
    """Symbols whose unrealized loss is ``> limit x equity`` (all losing symbols if equity is invalid)."""
    equity_valid = _finite(equity) and equity > 0
    breached: list[str] = []
    for position in positions:
        if position.qty == 0 or position.symbol in breached:
            continue
        loss = position_loss(position)
        if (equity_valid and loss > limit * equity) or (not equity_valid and loss > 0):
            breached.append(position.symbol)
    return breached


def missing_stops(positions: Sequence[PositionState]) -> list[str]:
    """Symbols of open positions with no valid stop (None, non-finite or <= 0)."""
    missing: list[str] = []
    for position in positions:
        if position.qty != 0 and not _valid_stop(position.stop_price) and position.symbol not in missing:
            missing.append(position.symbol)
    return missing


def drawdown(start_equity: float, equity: float) -> float:
    """``max(0, (start_equity - equity) / start_equity)``; ``inf`` when it cannot be measured."""
    if not _finite(start_equity, equity) or start_equity <= 0:
        return math.inf
    return max(0.0, (start_equity - equity) / start_equity)


def is_major_loss(go_live_equity: float, equity: float, table: PhaseTable) -> bool:
    """Day 15+ "major loss": drawdown from the go-live equity ``>= table.major_loss_drawdown``."""
    return drawdown(go_live_equity, equity) >= table.major_loss_drawdown


# ------------------------------------------------------------------------------------ entry check


def check_entry(
    idea_qty: int,
    idea: TradeIdea,
    account: AccountState,
    positions: Sequence[PositionState],
    pending: Sequence[PendingEntry],
    limits: Limits,
) -> Decision:
    """Decide whether buying ``idea_qty`` shares of ``idea`` is within ``limits``.

    Refuses (every reason names its rule) when: the idea or account is invalid; the daily loss limit is
    hit; the symbol is already held or pending; open + pending distinct symbols >= max_positions;
    any open position lacks a stop; the trade alone risks more than risk_per_trade x equity; it costs
    more than buying power; open risk + the new trade's risk > max_account_risk x equity.
    """
    reasons: list[str] = []
    equity = account.equity

    idea_ok = True
    if isinstance(idea_qty, bool) or not isinstance(idea_qty, int) or idea_qty < 1:
        reasons.append(f"invalid_order: quantity {idea_qty!r} is not a whole number of shares >= 1")
        idea_ok = False
    if not _finite(idea.entry_price, idea.stop_price, idea.target_price) or idea.entry_price <= 0:
        reasons.append(
            f"invalid_order: {idea.symbol} entry {idea.entry_price!r} / stop {idea.stop_price!r} / "
            f"target {idea.target_price!r} are not valid prices"
        )
        idea_ok = False
    elif not 0 < idea.stop_price < idea.entry_price:
        reasons.append(
            f"stop_loss: {idea.symbol} stop {idea.stop_price:g} must be above 0 and below entry "
            f"{idea.entry_price:g} (long entries only)"
        )
        idea_ok = False
    elif idea.target_price <= idea.entry_price:
        reasons.append(
            f"invalid_order: {idea.symbol} target {idea.target_price:g} "
            f"is not above entry {idea.entry_price:g}"
        )
        idea_ok = False

    account_ok = _finite(equity, account.last_equity, account.buying_power) and equity > 0
    if not account_ok:
        reasons.append(
            f"account: equity {equity!r} / last_equity {account.last_equity!r} / buying power "
            f"{account.buying_power!r} cannot be used to size risk"
        )

    loss = daily_loss(account)
    if loss >= limits.max_daily_loss:
        shown = "cannot be measured" if math.isinf(loss) else _pct(loss)
        reasons.append(f"max_daily_loss: day loss {shown} ≥ limit {_pct(limits.max_daily_loss)}")

    held = _symbols(positions)
    waiting = [s for s in _symbols(pending) if s not in held]
    if idea.symbol in held:
        reasons.append(f"duplicate_symbol: {idea.symbol} is already held")
    elif idea.symbol in waiting:
        reasons.append(f"duplicate_symbol: {idea.symbol} already has a pending entry")

    if len(held) + len(waiting) >= limits.max_positions:
        reasons.append(
            f"max_positions: {len(held)} open + {len(waiting)} pending ≥ limit {limits.max_positions}"
        )

    unprotected = missing_stops(positions)
    if unprotected:
        reasons.append(f"stop_loss: open positions without a stop: {', '.join(unprotected)}")

    if idea_ok and account_ok:
        new_risk = idea_qty * (idea.entry_price - idea.stop_price)
        per_trade_budget = equity * limits.risk_per_trade
        if new_risk > per_trade_budget:
            reasons.append(
                f"risk_per_trade: {idea_qty} x ({idea.entry_price:g} - {idea.stop_price:g}) = "
                f"{_money(new_risk)} > limit {_money(per_trade_budget)} "
                f"({_pct(limits.risk_per_trade)} of equity {_money(equity)})"
            )
        cost = idea_qty * idea.entry_price
        if cost > account.buying_power:
            reasons.append(
                f"buying_power: {idea_qty} x {idea.entry_price:g} = {_money(cost)} > buying power "
                f"{_money(account.buying_power)}"
            )
        current = open_risk(positions, pending)
        account_budget = equity * limits.max_account_risk
        if current + new_risk > account_budget:
            reasons.append(
                f"max_account_risk: open risk {_money(current)} + new {_money(new_risk)} = "
                f"{_money(current + new_risk)} > limit {_money(account_budget)} "
                f"({_pct(limits.max_account_risk)} of equity {_money(equity)})"
            )

    if reasons:
        return Decision(allowed=False, qty=0, reasons=tuple(reasons))
    return Decision(allowed=True, qty=idea_qty, reasons=())


# ----------------------------------------------------------------------------------------- triggers


def evaluate_triggers(
    account: AccountState,
    positions: Sequence[PositionState],
    limits: Limits,
    table: PhaseTable,
    consecutive_execution_failures: int,
    critical_error: bool,
    breaches: Sequence[str],
    just_closed: Sequence[tuple[str, float]] = (),
) -> list[Trigger]:
    """The procedure's IMMEDIATE STOP triggers (section 4.2), in a fixed order.

    * ``max_daily_loss``: day loss >= the phase's max_daily_loss (or unmeasurable);
    * ``single_position_loss``: a position losing > single_position_loss_limit x equity (one per symbol), open,
      or among ``just_closed`` ((symbol, realized P&L) of the positions closed since the last cycle: a gap
      through the stop realises the loss before any cycle sees it open);
    * ``execution_failures``: consecutive order-execution failures >= execution_failure_limit;
    * ``risk_breach``: each entry of ``breaches``; also more open positions than max_positions;
    * ``critical_error``: "stop" while any position is open, "investigate" when flat.
    """
    triggers: list[Trigger] = []
    equity = account.equity

    if daily_loss_breached(account, limits):
        loss = daily_loss(account)
        if math.isinf(loss):
            detail = (
                f"day loss cannot be measured (equity {equity!r}, last_equity {account.last_equity!r}); "
                f"limit {_pct(limits.max_daily_loss)}"
            )
        else:
            detail = (
                f"day loss {_pct(loss)} ({_money(account.last_equity - equity)} of last equity "
                f"{_money(account.last_equity)}) ≥ limit {_pct(limits.max_daily_loss)}"
            )
        triggers.append(Trigger("max_daily_loss", detail, "stop"))

    limit = table.single_position_loss_limit
    for symbol in position_loss_breaches(positions, equity, limit):
        lost = sum(position_loss(p) for p in positions if p.symbol == symbol)
        if _finite(equity) and equity > 0:
            detail = (
                f"{symbol} losing {_money(lost)} = {_pct(lost / equity)} of equity {_money(equity)} "
                f"> limit {_pct(limit)}"
            )
        else:
            detail = f"{symbol} losing {_money(lost)} with equity {equity!r}; limit {_pct(limit)} of equity"
        triggers.append(Trigger("single_position_loss", detail, "stop"))
    for symbol, pnl in just_closed:
        if _finite(pnl) and _finite(equity) and equity > 0 and -pnl > limit * equity:
            detail = (f"{symbol} closed at a loss of {_money(-pnl)} = {_pct(-pnl / equity)} of equity "
                      f"{_money(equity)} > limit {_pct(limit)}")  # fmt: skip
            triggers.append(Trigger("single_position_loss", detail, "stop"))

    if consecutive_execution_failures >= table.execution_failure_limit:
        triggers.append(
            Trigger(
                "execution_failures",
                f"{consecutive_execution_failures} consecutive order-execution failures "
                f"≥ limit {table.execution_failure_limit}",
                "stop",
            )
        )

    open_symbols = _symbols(positions)
    if len(open_symbols) > limits.max_positions:
        triggers.append(
            Trigger(
                "risk_breach",
                f"max_positions: {len(open_symbols)} open positions > limit {limits.max_positions}",
                "stop",
            )
        )
    for breach in breaches:
        triggers.append(Trigger("risk_breach", breach, "stop"))

    if critical_error:
        if open_symbols:
            triggers.append(
                Trigger(
                    "critical_error",
                    f"critical system error with {len(open_symbols)} open position(s): "
                    f"{', '.join(open_symbols)}",
                    "stop",
                )
            )
        else:
            triggers.append(
                Trigger("critical_error", "critical system error with no open positions", "investigate")
            )
    return triggers


def investigate_warnings(recent_trade_pnls: Sequence[float], table: PhaseTable) -> list[Trigger]:
    """INVESTIGATE: win rate < investigate_win_rate over the given closed trades, once there are at
    least investigate_min_trades of them (the caller passes the recent window, e.g. the last N trades).
    """
    trades = len(recent_trade_pnls)
    if trades < table.investigate_min_trades:
        return []
    wins = sum(1 for pnl in recent_trade_pnls if _finite(pnl) and pnl > 0)
    rate = wins / trades
    if rate < table.investigate_win_rate:
        return [
            Trigger(
                "win_rate",
                f"win rate {_pct(rate)} ({wins} of {trades} trades) < {_pct(table.investigate_win_rate)}",
                "investigate",
            )
        ]
    return []
