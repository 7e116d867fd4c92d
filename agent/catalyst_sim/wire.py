"""Alpaca's wire format: how the simulator's objects look as JSON.

alpaca-py validates these strictly (pydantic models, strict enums), so the shapes follow Alpaca's
documented responses: numbers as strings on accounts, positions and orders; bars with ``n`` and
``vw``; calendar times ``HH:MM`` in US Eastern time; timestamps RFC 3339. PDT fields are omitted
(Alpaca dropped them in 2026).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from .calendar import NY
from .matching import Account, Fill, Order, Position

JSON = dict[str, Any]


def ts(t: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z, as Alpaca sends order and activity timestamps."""
    if t is None:
        return None
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def money(x: float) -> str:
    return f"{x:.2f}"


def price(x: float | None) -> str | None:
    if x is None:
        return None
    return f"{x:.2f}" if x >= 1 else f"{x:.4f}"


def asset_id(symbol: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"catalyst-sim:asset:{symbol}"))


def account(acct: Account) -> JSON:
    equity = acct.equity()
    lmv = acct.long_market_value()
    bp = acct.buying_power()
    return {
        "id": acct.id,
        "account_number": acct.account_number,
        "status": acct.status,
        "crypto_status": "INACTIVE",
        "currency": "USD",
        "buying_power": money(bp),
        "regt_buying_power": money(bp),
        "daytrading_buying_power": money(bp),
        "non_marginable_buying_power": money(bp),
        "options_buying_power": money(bp),
        "cash": money(acct.cash),
        "accrued_fees": "0",
        "pending_transfer_in": "0",
        "pending_transfer_out": "0",
        "portfolio_value": money(equity),
        "trading_blocked": acct.trading_blocked,
        "transfers_blocked": False,
        "account_blocked": acct.account_blocked,
        "created_at": ts(acct.created_at),
        "trade_suspended_by_user": False,
        "multiplier": "1",
        "shorting_enabled": False,
        "equity": money(equity),
        "last_equity": money(acct.last_equity),
        "long_market_value": money(lmv),
        "short_market_value": "0",
        "position_market_value": money(lmv),
        "initial_margin": money(lmv),
        "maintenance_margin": money(lmv * 0.3),
        "last_maintenance_margin": "0",
        "sma": "0",
        "options_approved_level": 0,
        "options_trading_level": 0,
    }


def order(o: Order, *, with_legs: bool = True) -> JSON:
    avg = o.filled_avg_price
    return {
        "id": o.id,
        "client_order_id": o.client_order_id,
        "created_at": ts(o.created_at),
        "updated_at": ts(o.updated_at or o.created_at),
        "submitted_at": ts(o.submitted_at or o.created_at),
        "filled_at": ts(o.filled_at),
        "expired_at": ts(o.expired_at),
        "canceled_at": ts(o.canceled_at),
        "failed_at": ts(o.failed_at),
        "replaced_at": None,
        "replaced_by": None,
        "replaces": None,
        "asset_id": asset_id(o.symbol),
        "symbol": o.symbol,
        "asset_class": "us_equity",
        "notional": None,
        "qty": str(o.qty),
        "filled_qty": str(o.filled_qty),
        "filled_avg_price": None if avg is None else f"{avg:.4f}".rstrip("0").rstrip("."),
        "order_class": o.order_class,
        "order_type": o.type,
        "type": o.type,
        "side": o.side,
        "position_intent": _intent(o),
        "time_in_force": o.time_in_force,
        "limit_price": price(o.limit_price),
        "stop_price": price(o.stop_price),
        "status": o.status,
        "extended_hours": False,
        "legs": [order(leg, with_legs=False) for leg in o.legs] if (with_legs and o.legs) else None,
        "trail_percent": None,
        "trail_price": None,
        "hwm": None,
        "expires_at": None,
    }


def _intent(o: Order) -> str:
    if o.side == "buy":
        return "buy_to_open"
    return "sell_to_close"


def position(acct: Account, p: Position, lastday_price: float, exchange: str = "NASDAQ") -> JSON:
    current = acct.price(p.symbol)
    market_value = p.qty * current
    cost = p.cost
    unrealized = market_value - cost
    intraday_base = p.qty * lastday_price
    available = p.qty - acct.held_for_orders(p.symbol)
    return {
        "asset_id": asset_id(p.symbol),
        "symbol": p.symbol,
        "exchange": exchange,
        "asset_class": "us_equity",
        "asset_marginable": True,
        "avg_entry_price": f"{p.avg_entry_price:.4f}",
        "qty": str(p.qty),
        "qty_available": str(available),
        "side": "long",
        "market_value": money(market_value),
        "cost_basis": money(cost),
        "unrealized_pl": money(unrealized),
        "unrealized_plpc": _ratio(unrealized, cost),
        "unrealized_intraday_pl": money(market_value - intraday_base),
        "unrealized_intraday_plpc": _ratio(market_value - intraday_base, intraday_base),
        "current_price": price(current),
        "lastday_price": price(lastday_price),
        "change_today": _ratio(current - lastday_price, lastday_price),
    }


def _ratio(part: float, whole: float) -> str:
    return f"{(part / whole if whole else 0.0):.6f}"


def fill_activity(acct: Account, f: Fill) -> JSON:
    return {
        "id": f.id,
        "account_id": acct.id,
        "activity_type": "FILL",
        "transaction_time": ts(f.at),
        "type": "fill" if f.leaves_qty == 0 else "partial_fill",
        "price": price(f.price),
        "qty": str(f.qty),
        "side": f.side,
        "symbol": f.symbol,
        "leaves_qty": str(f.leaves_qty),
        "order_id": f.order_id,
        "cum_qty": str(f.cum_qty),
        "order_status": f.order_status,
    }


def clock(now: datetime, is_open: bool, next_open: datetime, next_close: datetime) -> JSON:
    return {
        "timestamp": now.astimezone(NY).isoformat(),
        "is_open": is_open,
        "next_open": next_open.astimezone(NY).isoformat(),
        "next_close": next_close.astimezone(NY).isoformat(),
    }


def calendar_day(d: date, open_: datetime, close: datetime) -> JSON:
    return {
        "date": d.isoformat(),
        "open": open_.astimezone(NY).strftime("%H:%M"),
        "close": close.astimezone(NY).strftime("%H:%M"),
        "session_open": "0400",
        "session_close": "2000",
        "settlement_date": d.isoformat(),
    }


def error(code: int, message: str, extra: dict[str, object] | None = None) -> JSON:
    body: JSON = {"code": code, "message": message}
    if extra:
        body.update(extra)
    return body
