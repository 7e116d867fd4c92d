"""Accounts, orders and the matching engine of the simulator.

Everything here is plain Python over plain data and knows nothing about HTTP. The engine is driven by
two kinds of call: a request (submit, cancel, close) at the current virtual time, and ``on_bar`` when
the clock completes a one-minute bar. Prices come from a ``PriceSource`` (the ``Market``).

Rules it keeps (the ones the agent relies on):
- cash + Σ qty × price = equity, always (equity is never stored, only derived);
- a bracket's legs are ``held`` until the entry is completely filled, then they work as OCO;
- a partial take-profit fill resizes the stop leg to what is left;
- ``day`` orders expire at the session close;
- buying power = cash − value reserved by open buy orders (a cash account, multiplier 1).
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

OPEN_STATUSES = frozenset(
    {"new", "partially_filled", "accepted", "pending_new", "held", "pending_cancel", "accepted_for_bidding"}
)
CLOSED_STATUSES = frozenset(
    {"filled", "canceled", "expired", "rejected", "replaced", "done_for_day", "stopped"}
)
ORDER_TYPES = frozenset({"market", "limit", "stop", "stop_limit"})
TIME_IN_FORCE = frozenset({"day", "gtc", "opg", "cls", "ioc", "fok"})
SUPPORTED_TIME_IN_FORCE = frozenset({"day", "gtc"})
ORDER_CLASSES = frozenset({"simple", "bracket", "oco", "oto"})
SIDES = frozenset({"buy", "sell"})


class BrokerError(Exception):
    """A request the broker refuses; rendered as Alpaca's ``{"code", "message"}`` with ``status``."""

    def __init__(self, status: int, code: int, message: str, extra: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}


def unprocessable(message: str) -> BrokerError:
    return BrokerError(422, 42210000, message)


def forbidden(message: str, extra: dict[str, object] | None = None) -> BrokerError:
    return BrokerError(403, 40310000, message, extra)


def not_found(message: str) -> BrokerError:
    return BrokerError(404, 40410000, message)


class PriceSource(Protocol):
    def last_price(self, symbol: str, t: datetime) -> float: ...
    def is_halted(self, symbol: str, t: datetime) -> bool: ...


@dataclass(frozen=True, slots=True)
class MinuteBar:
    """The part of a bar the engine needs."""

    o: float
    h: float
    low: float
    c: float
    v: int


@dataclass(slots=True)
class Order:
    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: int
    order_class: str
    status: str
    created_at: datetime
    limit_price: float | None = None
    stop_price: float | None = None
    filled_qty: int = 0
    filled_notional: float = 0.0
    updated_at: datetime | None = None
    submitted_at: datetime | None = None
    filled_at: datetime | None = None
    expired_at: datetime | None = None
    canceled_at: datetime | None = None
    failed_at: datetime | None = None
    legs: list[Order] = field(default_factory=list)
    parent: Order | None = None
    leg_role: str | None = None  # "take_profit" | "stop_loss" for bracket legs
    triggered: bool = False  # a stop that has been hit and now works as market/limit
    reject_reason: str | None = None

    @property
    def remaining(self) -> int:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def filled_avg_price(self) -> float | None:
        return self.filled_notional / self.filled_qty if self.filled_qty else None

    def touch(self, now: datetime) -> None:
        self.updated_at = now

    def mark_canceled(self, now: datetime) -> None:
        self.status = "canceled"
        self.canceled_at = now
        self.touch(now)


@dataclass(slots=True)
class Position:
    symbol: str
    qty: int
    cost: float  # Σ entry price × qty of the shares still held

    @property
    def avg_entry_price(self) -> float:
        return self.cost / self.qty if self.qty else 0.0


@dataclass(frozen=True, slots=True)
class Fill:
    id: str
    order_id: str
    symbol: str
    side: str
    qty: int
    price: float
    at: datetime
    cum_qty: int
    leaves_qty: int
    order_status: str


@dataclass(slots=True)
class EngineSettings:
    slippage_bps: float = 0.0  # added against the trader on market fills and triggered stops
    commission_per_share: float = 0.0
    participation: float = 0.25  # most of a minute bar's volume one resting order may take


@dataclass
class Account:
    """One brokerage account (the simulator holds a paper one and a live one)."""

    name: str
    account_number: str
    id: str
    cash: float
    prices: PriceSource
    clock: Callable[[], datetime]
    settings: EngineSettings
    rng: random.Random
    status: str = "ACTIVE"
    trading_blocked: bool = False
    account_blocked: bool = False
    last_equity: float = 0.0
    closing_equity: float = 0.0
    orders: list[Order] = field(default_factory=list)
    positions: dict[str, Position] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    commissions_paid: float = 0.0
    created_at: datetime | None = None
    market_is_open: Callable[[], bool] = lambda: False
    # Faults that act inside the engine (set by the fault injector, consumed here).
    pending_rejections: list[tuple[str, str]] = field(default_factory=list)  # (target, message)
    pending_partial: list[float] = field(default_factory=list)  # fill ratios for the next fills
    _by_id: dict[str, Order] = field(default_factory=dict)
    _by_client_id: dict[str, Order] = field(default_factory=dict)
    _open: list[Order] = field(default_factory=list)  # every order that may still be open, pruned lazily

    def __post_init__(self) -> None:
        if not self.last_equity:
            self.last_equity = self.cash

    # ----------------------------------------------------------------- read side
    def now(self) -> datetime:
        return self.clock()

    def price(self, symbol: str) -> float:
        return self.prices.last_price(symbol, self.now())

    def long_market_value(self) -> float:
        return sum(p.qty * self.price(p.symbol) for p in self.positions.values())

    def equity(self) -> float:
        return self.cash + self.long_market_value()

    def _reference_price(self, symbol: str, limit_price: float | None, stop_price: float | None) -> float:
        """The price a buy is reserved at: its limit, else the last trade (or its stop, if higher)."""
        if limit_price is not None:
            return limit_price
        last = self.price(symbol)
        return last if stop_price is None else max(last, stop_price)

    def reserved_for_buys(self) -> float:
        return sum(
            (o.remaining * self._reference_price(o.symbol, o.limit_price, o.stop_price)
            for o in self.open_orders()
            if o.side == "buy" and o.parent is None),
            0.0,
        )

    def buying_power(self) -> float:
        return max(0.0, self.cash - self.reserved_for_buys())

    def held_for_orders(self, symbol: str) -> int:
        """Shares of a position committed to working sell orders (an OCO pair holds its shares once)."""
        held = 0
        seen_parents: set[str] = set()
        for o in self.open_orders():
            if o.symbol != symbol or o.side != "sell" or o.status == "held":
                continue
            if o.parent is None:
                held += o.remaining
            elif o.parent.id not in seen_parents:
                seen_parents.add(o.parent.id)
                held += max(leg.remaining for leg in o.parent.legs if leg.is_open and leg.status != "held")
        return held

    def get_order(self, order_id: str) -> Order:
        try:
            return self._by_id[order_id]
        except KeyError:
            raise not_found(f"order not found for {order_id}") from None

    def get_order_by_client_id(self, client_order_id: str) -> Order:
        try:
            return self._by_client_id[client_order_id]
        except KeyError:
            raise not_found(f"order not found for client_order_id {client_order_id}") from None

    def open_orders(self) -> list[Order]:
        """Open orders in submission order; closed ones are dropped from the index as they are seen."""
        self._open = [o for o in self._open if o.is_open]
        return list(self._open)

    def working_by_symbol(self) -> dict[str, list[Order]]:
        """Open orders that can fill (not ``held``), by symbol, in submission order."""
        out: dict[str, list[Order]] = {}
        for o in self.open_orders():
            if o.status != "held":
                out.setdefault(o.symbol, []).append(o)
        return out

    # ---------------------------------------------------------------- write side
    def _new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _register(self, order: Order) -> None:
        self.orders.append(order)
        self._open.append(order)
        self._by_id[order.id] = order
        self._by_client_id[order.client_order_id] = order

    def submit(
        self,
        *,
        symbol: str,
        qty: int,
        side: str,
        type: str,
        time_in_force: str,
        client_order_id: str | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        order_class: str = "simple",
        take_profit: float | None = None,
        stop_loss: float | None = None,
        stop_loss_limit: float | None = None,
        known_symbol: Callable[[str], bool] = lambda s: True,
    ) -> Order:
        """Validate and accept an order, filling it at once when it is marketable and the market is open."""
        self._validate_submit(
            symbol, qty, side, type, time_in_force, limit_price, stop_price, order_class,
            take_profit, stop_loss, known_symbol,
        )
        coid = client_order_id or self._new_id()
        if coid in self._by_client_id:
            raise unprocessable("client_order_id must be unique")
        if len(coid) > 128:
            raise unprocessable("client_order_id must be no more than 128 characters")
        if side == "sell":
            position = self.positions.get(symbol)
            available = (position.qty if position else 0) - self.held_for_orders(symbol)
            if available < qty:
                if position is None:
                    raise forbidden(f"account is not allowed to short {symbol}")
                raise forbidden(
                    f"insufficient qty available for order (requested: {qty}, available: {available})",
                    {"available": str(available), "existing_qty": str(position.qty),
                     "held_for_orders": str(position.qty - available), "symbol": symbol},
                )
        else:
            ref = self._reference_price(symbol, limit_price, stop_price)
            slipped = qty * ref * (1 + self.settings.slippage_bps / 10_000)
            cost = slipped + self._commission(qty)
            if cost > self.buying_power() + 1e-9:
                raise forbidden("insufficient buying power")
        now = self.now()
        order = Order(
            id=self._new_id(), client_order_id=coid, symbol=symbol, side=side, type=type,
            time_in_force=time_in_force, qty=qty, order_class=order_class, status="accepted",
            created_at=now, updated_at=now, submitted_at=now, limit_price=limit_price, stop_price=stop_price,
        )
        if order_class == "bracket":
            exit_side = "sell" if side == "buy" else "buy"
            assert take_profit is not None and stop_loss is not None
            tp = Order(
                id=self._new_id(), client_order_id=self._new_id(), symbol=symbol, side=exit_side, type="limit",
                time_in_force=time_in_force, qty=qty, order_class="bracket", status="held", created_at=now,
                updated_at=now, submitted_at=now, limit_price=take_profit, parent=order, leg_role="take_profit",
            )
            sl = Order(
                id=self._new_id(), client_order_id=self._new_id(), symbol=symbol, side=exit_side,
                type="stop_limit" if stop_loss_limit is not None else "stop", time_in_force=time_in_force,
                qty=qty, order_class="bracket", status="held", created_at=now, updated_at=now,
                submitted_at=now, stop_price=stop_loss, limit_price=stop_loss_limit, parent=order,
                leg_role="stop_loss",
            )
            order.legs = [tp, sl]
        self._register(order)
        for leg in order.legs:
            self._register(leg)
        if self._take_rejection("entry", order):
            return order
        order.status = "new"
        self._execute_on_arrival(order)
        return order

    def _validate_submit(
        self, symbol: str, qty: int, side: str, type: str, tif: str, limit_price: float | None,
        stop_price: float | None, order_class: str, take_profit: float | None, stop_loss: float | None,
        known_symbol: Callable[[str], bool],
    ) -> None:
        if self.account_blocked or self.trading_blocked or self.status != "ACTIVE":
            raise forbidden(f"account is not allowed to trade (status {self.status}, trading blocked)")
        if not known_symbol(symbol):
            raise unprocessable(f"asset \"{symbol}\" not found")
        if side not in SIDES:
            raise unprocessable(f"invalid side \"{side}\"")
        if type not in ORDER_TYPES:
            raise unprocessable(f"invalid order type \"{type}\"")
        if tif not in TIME_IN_FORCE:
            raise unprocessable(f"invalid time_in_force \"{tif}\"")
        if tif not in SUPPORTED_TIME_IN_FORCE:
            raise unprocessable(f"time_in_force \"{tif}\" is not supported by this simulator: use day or gtc")
        if order_class not in ORDER_CLASSES:
            raise unprocessable(f"invalid order_class \"{order_class}\"")
        if order_class in ("oco", "oto"):
            raise unprocessable(f"order_class \"{order_class}\" is not supported by this simulator")
        if qty <= 0:
            raise unprocessable("qty must be > 0")
        if type in ("limit", "stop_limit") and limit_price is None:
            raise unprocessable("limit_price is required for limit orders")
        if type in ("stop", "stop_limit") and stop_price is None:
            raise unprocessable("stop_price is required for stop orders")
        for name, value in (("limit_price", limit_price), ("stop_price", stop_price)):
            if value is not None and value <= 0:
                raise unprocessable(f"{name} must be > 0")
        if order_class == "bracket":
            if take_profit is None or stop_loss is None:
                raise unprocessable("bracket orders require take_profit.limit_price and stop_loss.stop_price")
            if type not in ("market", "limit"):
                raise unprocessable("bracket entry must be a market or limit order")
            base = limit_price if limit_price is not None else self.price(symbol)
            if side == "buy":
                if not take_profit > stop_loss:
                    raise unprocessable("take_profit.limit_price must be > stop_loss.stop_price")
                if not stop_loss <= base - 0.01:
                    raise unprocessable(f"stop_loss.stop_price must be <= base_price - 0.01 (base {base:.2f})")
                if not take_profit >= base + 0.01:
                    raise unprocessable(f"take_profit.limit_price must be >= base_price + 0.01 (base {base:.2f})")
            else:
                raise unprocessable("short brackets are not supported: this account cannot short")

    def _take_rejection(self, target: str, order: Order) -> bool:
        """Consume one injected rejection aimed at ``target`` ("entry", "stop_loss", "take_profit")."""
        for i, (tgt, message) in enumerate(self.pending_rejections):
            if tgt == target:
                del self.pending_rejections[i]
                self._reject(order, message)
                return True
        return False

    def _reject(self, order: Order, message: str) -> None:
        now = self.now()
        order.status = "rejected"
        order.failed_at = now
        order.reject_reason = message
        order.touch(now)
        for leg in order.legs:
            if leg.is_open:
                leg.mark_canceled(now)

    def cancel(self, order_id: str) -> Order:
        order = self.get_order(order_id)
        if not order.is_open:
            raise unprocessable(f"order is not cancelable (status {order.status})")
        if order.parent is not None and order.parent.is_open:
            raise unprocessable("a held bracket leg cannot be canceled before its parent; cancel the parent")
        self._cancel_tree(order)
        return order

    def _cancel_tree(self, order: Order) -> None:
        # Legs work only once the entry has filled completely: a canceled entry takes its held legs
        # with it, even after a partial fill (those shares are then unprotected, as at Alpaca).
        # Canceling one OCO leg cancels its sibling.
        now = self.now()
        siblings = order.parent.legs if order.parent is not None else []
        for o in (order, *order.legs, *siblings):
            if o.is_open:
                o.mark_canceled(now)

    def cancel_all(self) -> list[Order]:
        """Cancel every open order; returns each order this canceled (both legs of an OCO pair)."""
        before = self.open_orders()
        for o in before:
            if o.is_open and (o.parent is None or not o.parent.is_open):
                self._cancel_tree(o)
        return [o for o in before if o.status == "canceled"]

    def close_position(self, symbol: str, qty: int | None = None, percentage: float | None = None) -> Order:
        position = self.positions.get(symbol)
        if position is None:
            raise not_found(f"position not found: {symbol}")
        if qty is None:
            qty = position.qty if percentage is None else math.floor(position.qty * percentage / 100)
        if qty <= 0:
            raise unprocessable("qty must be > 0")
        if qty > position.qty:
            raise forbidden(f"insufficient qty available for order (requested: {qty}, available: {position.qty})")
        return self.submit(symbol=symbol, qty=qty, side="sell", type="market", time_in_force="day")

    def close_all(self, cancel_orders: bool) -> list[tuple[str, Order | BrokerError]]:
        if cancel_orders:
            self.cancel_all()
        results: list[tuple[str, Order | BrokerError]] = []
        for symbol in sorted(self.positions):
            position = self.positions[symbol]
            try:
                results.append((symbol, self.close_position(symbol, position.qty)))
            except BrokerError as exc:
                results.append((symbol, exc))
        return results

    # -------------------------------------------------------------- execution
    def _execute_on_arrival(self, order: Order) -> None:
        """Marketable orders fill at the last trade while the market is open and the symbol trades."""
        if not self._market_open(order.symbol):
            return
        last = self.price(order.symbol)
        if order.type == "market":
            self._fill(order, order.remaining, self._slipped(last, order.side))
        elif order.type == "limit" and order.limit_price is not None:
            if order.side == "buy" and order.limit_price >= last:
                self._fill(order, order.remaining, min(order.limit_price, self._slipped(last, "buy")))
            elif order.side == "sell" and order.limit_price <= last:
                self._fill(order, order.remaining, max(order.limit_price, self._slipped(last, "sell")))

    def _commission(self, qty: int) -> float:
        """Per-share commission, rounded to the cent as a broker charges it."""
        return round(qty * self.settings.commission_per_share, 2)

    def _market_open(self, symbol: str) -> bool:
        return self.market_is_open() and not self.prices.is_halted(symbol, self.now())

    def _slipped(self, price: float, side: str) -> float:
        factor = self.settings.slippage_bps / 10_000
        return round(price * (1 + factor) if side == "buy" else price * (1 - factor), 2)

    def on_bar(self, bar: MinuteBar, at: datetime, orders: Iterable[Order]) -> None:
        """Work ``orders`` (one symbol's working orders) against one completed minute bar."""
        for order in orders:
            if not order.is_open:  # an OCO sibling filled earlier in this bar
                continue
            self._work(order, bar, at)

    def _work(self, order: Order, bar: MinuteBar, at: datetime) -> None:
        if order.type == "market" or (order.type == "stop" and order.triggered):
            # a market order, or the rest of a stop that triggered earlier: it trades at the open
            self._fill(order, order.remaining, self._slipped(bar.o, order.side), at)
            return
        if order.type in ("stop", "stop_limit") and not order.triggered:
            if not self._stop_hit(order, bar):
                return
            order.triggered = True
            if order.type == "stop":
                # Gaps fill at the open, beyond the stop: the trader gets the worse price.
                assert order.stop_price is not None
                base = min(order.stop_price, bar.o) if order.side == "sell" else max(order.stop_price, bar.o)
                self._fill(order, order.remaining, self._slipped(base, order.side), at)
                return
        if order.limit_price is not None:
            self._work_limit(order, order.limit_price, bar, at)

    @staticmethod
    def _stop_hit(order: Order, bar: MinuteBar) -> bool:
        assert order.stop_price is not None
        return bar.low <= order.stop_price if order.side == "sell" else bar.h >= order.stop_price

    def _work_limit(self, order: Order, lp: float, bar: MinuteBar, at: datetime) -> None:
        """A limit fills when the bar crosses it, at the limit or better, up to the participation cap."""
        if order.side == "buy" and bar.low <= lp:
            price = min(lp, bar.o)
        elif order.side == "sell" and bar.h >= lp:
            price = max(lp, bar.o)
        else:
            return
        cap = max(1, int(bar.v * self.settings.participation))
        self._fill(order, min(order.remaining, cap), round(price, 2), at)

    def _fill(self, order: Order, qty: int, price: float, at: datetime | None = None) -> None:
        if qty <= 0:
            return
        if self.pending_partial and order.remaining > 1:
            ratio = self.pending_partial.pop(0)
            qty = max(1, min(qty, math.floor(order.remaining * ratio)))
        at = at or self.now()
        commission = self._commission(qty)
        if order.side == "buy":
            self.cash = round(self.cash - qty * price - commission, 2)
            pos = self.positions.get(order.symbol)
            if pos is None:
                self.positions[order.symbol] = Position(order.symbol, qty, qty * price)
            else:
                pos.qty += qty
                pos.cost += qty * price
        else:
            pos = self.positions[order.symbol]
            avg = pos.avg_entry_price
            self.cash = round(self.cash + qty * price - commission, 2)
            pos.qty -= qty
            pos.cost -= avg * qty
            if pos.qty == 0:
                del self.positions[order.symbol]
        self.commissions_paid = round(self.commissions_paid + commission, 2)
        order.filled_qty += qty
        order.filled_notional += qty * price
        order.status = "filled" if order.remaining == 0 else "partially_filled"
        if order.remaining == 0:
            order.filled_at = at
        order.touch(at)
        self.fills.append(
            Fill(
                id=f"{at.strftime('%Y%m%d%H%M%S%f')[:17]}::{self._new_id()}", order_id=order.id,
                symbol=order.symbol, side=order.side, qty=qty, price=price, at=at, cum_qty=order.filled_qty,
                leaves_qty=order.remaining, order_status=order.status,
            )
        )
        if order.legs and order.remaining == 0:
            self._activate_legs(order)
        if order.parent is not None:
            self._after_leg_fill(order)

    def _activate_legs(self, parent: Order) -> None:
        """The entry filled completely: its held legs start working as an OCO pair."""
        now = self.now()
        for leg in parent.legs:
            if leg.status != "held":
                continue
            if leg.leg_role is not None and self._take_rejection(leg.leg_role, leg):
                continue
            leg.status = "new"
            leg.touch(now)

    def _after_leg_fill(self, leg: Order) -> None:
        assert leg.parent is not None
        siblings = [s for s in leg.parent.legs if s is not leg and s.is_open]
        now = self.now()
        for sib in siblings:
            if leg.remaining == 0:
                sib.mark_canceled(now)
            else:  # a partial exit shrinks the other leg to the shares still held
                sib.qty = sib.filled_qty + leg.remaining
                sib.touch(now)

    def expire_day_orders(self, at: datetime) -> list[Order]:
        """At the close every working non-GTC order expires; held legs of an expired entry are canceled."""
        expired: list[Order] = []
        for o in self.open_orders():  # legs come after their parent, so activated day legs expire too
            if not o.is_open or o.time_in_force == "gtc" or (o.parent is not None and o.parent.is_open):
                continue
            o.status = "expired"
            o.expired_at = at
            o.touch(at)
            expired.append(o)
            for leg in o.legs:
                if leg.status == "held":
                    leg.mark_canceled(at)
        return expired

    def mark_close(self) -> None:
        """Remember the closing equity; it becomes ``last_equity`` when the next session opens."""
        self.closing_equity = self.equity()
