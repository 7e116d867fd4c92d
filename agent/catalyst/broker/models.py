"""What the agent knows of the broker: small frozen records parsed from Alpaca's JSON.

Both doors to the broker produce these: the alpaca-py adapter (``alpaca.py``, for trading) dumps
its validated models to JSON first, and the light client (``lite.py``, for the kill switch and the
read commands) parses the JSON it receives. One parser, so both agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")

OPEN_ORDER_STATUSES = frozenset(
    {"new", "partially_filled", "accepted", "pending_new", "held", "accepted_for_bidding", "pending_cancel",
     "pending_replace", "calculated", "suspended"}
)


def _f(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def _i(value: Any) -> int:
    return 0 if value in (None, "") else int(float(value))


def _t(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _enum(value: Any) -> str:
    return str(getattr(value, "value", value))


@dataclass(frozen=True, slots=True)
class ClockInfo:
    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ClockInfo:
        ts, nxo, nxc = _t(d["timestamp"]), _t(d["next_open"]), _t(d["next_close"])
        assert ts is not None and nxo is not None and nxc is not None
        return cls(ts, bool(d["is_open"]), nxo, nxc)


@dataclass(frozen=True, slots=True)
class AccountInfo:
    account_number: str
    status: str
    equity: float
    last_equity: float
    cash: float
    buying_power: float
    long_market_value: float
    trading_blocked: bool
    account_blocked: bool

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AccountInfo:
        return cls(
            account_number=str(d.get("account_number", "")),
            status=_enum(d.get("status", "")),
            equity=_f(d.get("equity")) or 0.0,
            last_equity=_f(d.get("last_equity")) or 0.0,
            cash=_f(d.get("cash")) or 0.0,
            buying_power=_f(d.get("buying_power")) or 0.0,
            long_market_value=_f(d.get("long_market_value")) or 0.0,
            trading_blocked=bool(d.get("trading_blocked")),
            account_blocked=bool(d.get("account_blocked")),
        )

    @property
    def day_pnl(self) -> float:
        return self.equity - self.last_equity


@dataclass(frozen=True, slots=True)
class PositionInfo:
    symbol: str
    qty: int
    avg_entry_price: float
    current_price: float
    market_value: float
    unrealized_pl: float
    qty_available: int

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PositionInfo:
        qty = _i(d.get("qty"))
        return cls(
            symbol=str(d["symbol"]),
            qty=qty,
            avg_entry_price=_f(d.get("avg_entry_price")) or 0.0,
            current_price=_f(d.get("current_price")) or 0.0,
            market_value=_f(d.get("market_value")) or 0.0,
            unrealized_pl=_f(d.get("unrealized_pl")) or 0.0,
            qty_available=_i(d.get("qty_available", qty)),
        )


@dataclass(frozen=True, slots=True)
class OrderInfo:
    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    order_class: str
    time_in_force: str
    status: str
    qty: int
    filled_qty: int
    filled_avg_price: float | None
    limit_price: float | None
    stop_price: float | None
    submitted_at: datetime | None
    filled_at: datetime | None
    legs: tuple[OrderInfo, ...] = ()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> OrderInfo:
        return cls(
            id=str(d["id"]),
            client_order_id=str(d["client_order_id"]),
            symbol=str(d.get("symbol") or ""),
            side=_enum(d.get("side")),
            type=_enum(d.get("type") or d.get("order_type")),
            order_class=_enum(d.get("order_class") or "simple"),
            time_in_force=_enum(d.get("time_in_force")),
            status=_enum(d["status"]),
            qty=_i(d.get("qty")),
            filled_qty=_i(d.get("filled_qty")),
            filled_avg_price=_f(d.get("filled_avg_price")),
            limit_price=_f(d.get("limit_price")),
            stop_price=_f(d.get("stop_price")),
            submitted_at=_t(d.get("submitted_at")),
            filled_at=_t(d.get("filled_at")),
            legs=tuple(cls.from_json(leg) for leg in (d.get("legs") or ())),
        )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ORDER_STATUSES

    @property
    def is_stop(self) -> bool:
        return self.type in ("stop", "stop_limit", "trailing_stop")

    def walk(self) -> tuple[OrderInfo, ...]:
        """This order and its legs."""
        return (self, *self.legs)


@dataclass(frozen=True, slots=True)
class BarInfo:
    symbol: str
    t: datetime
    o: float
    h: float
    l: float  # noqa: E741 - Alpaca's name
    c: float
    v: float

    @classmethod
    def from_json(cls, symbol: str, d: dict[str, Any]) -> BarInfo:
        t = _t(d.get("t", d.get("timestamp")))
        assert t is not None
        return cls(symbol, t, float(d.get("o", d.get("open", 0))), float(d.get("h", d.get("high", 0))),
                   float(d.get("l", d.get("low", 0))), float(d.get("c", d.get("close", 0))),
                   float(d.get("v", d.get("volume", 0))))


@dataclass(frozen=True, slots=True)
class CloseResult:
    """One line of a close-all answer (Alpaca's 207 multi-status)."""

    symbol: str
    status: int
    message: str = ""


class BrokerError(Exception):
    """The broker said no, or could not be reached. ``unclear`` means the request's effect is unknown."""

    def __init__(self, message: str, status: int | None = None, unclear: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.unclear = unclear
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        return self.unclear or self.status in (429, 500, 502, 503, 504)


class OrderRejected(BrokerError):
    """The broker refused the order for good (buying power, invalid, blocked)."""


def stop_prices(orders: Sequence[OrderInfo]) -> dict[str, float]:
    """Symbol -> the highest working sell-stop price protecting it (the cycle and `catalyst positions`)."""
    out: dict[str, float] = {}
    for o in orders:
        for x in o.walk():
            if x.side == "sell" and x.is_stop and x.is_open and x.stop_price:
                out[x.symbol] = max(out.get(x.symbol, 0.0), x.stop_price)
    return out
