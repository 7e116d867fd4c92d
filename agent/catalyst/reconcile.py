"""Reconcile the broker with our rows, every cycle. The broker is the truth; we record what it says.

- every order we have not seen finish is looked up (in the nested order list, else by client id);
- an intent the broker never received (the agent died between writing it and submitting it) is
  marked ``failed``: the lock guarantees no other cycle is still sending it, and it is never re-sent;
- an entry with fills becomes an open position (entry price from the fills, stop and target from
  the intent), and its bracket legs are recorded;
- a position the broker no longer holds is closed, with the reason read from the order that sold it
  (target leg, stop leg, our exit, the kill switch, or by hand);
- a position at the broker that we never opened (someone traded by hand) is adopted, so that the
  risk engine protects it with a stop;
- fill activities are recorded (idempotent on the broker's activity id).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from .broker.models import OrderInfo, PositionInfo
from .log import fields

log = logging.getLogger("catalyst.reconcile")
UNSETTLED = ("intent", "submitted", "unknown", "new", "partially_filled", "accepted", "pending_new", "held",
             "accepted_for_bidding", "pending_cancel", "pending_replace", "pending_review", "calculated",
             "suspended")
SOLD_STATES = ("filled", "partially_filled", "canceled", "expired")  # an order of ours that may have sold
LEG_INTENT = {"limit": "target", "stop": "stop", "stop_limit": "stop"}


class ReconcileBroker(Protocol):
    def order_by_client_id(self, client_order_id: str) -> OrderInfo | None: ...
    def fills(self, after: datetime | None = None) -> list[dict[str, Any]]: ...


@dataclass
class ReconcileResult:
    orders_updated: int = 0
    never_submitted: list[str] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    closed: list[tuple[str, str]] = field(default_factory=list)  # (symbol, exit reason)
    adopted: list[str] = field(default_factory=list)
    fills_recorded: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"orders_updated": self.orders_updated, "never_submitted": self.never_submitted,
                "opened": self.opened, "closed": [f"{s}:{r}" for s, r in self.closed],
                "adopted": self.adopted, "fills_recorded": self.fills_recorded}


def index_orders(orders: Iterable[OrderInfo]) -> dict[str, OrderInfo]:
    """Every order and leg by client id."""
    out: dict[str, OrderInfo] = {}
    for o in orders:
        for x in o.walk():
            out[x.client_order_id] = x
    return out


HALT_TOLERANCE = timedelta(seconds=5)
IN_FLIGHT_GRACE = timedelta(minutes=2)


def during_halt(t: datetime | None, halts: Sequence[tuple[datetime, datetime | None]]) -> bool:
    """Whether ``t`` (broker time) falls in a halt window; the kill switch stamps halts with broker time."""
    if t is None:
        return False
    return any(start - HALT_TOLERANCE <= t and (end is None or t <= end) for start, end in halts)


def exit_for(position: dict[str, Any], broker_orders: Sequence[OrderInfo], ours: dict[str, dict[str, Any]],
             halted: bool, halts: Sequence[tuple[datetime, datetime | None]] = ()) -> tuple[float | None, str,
                                                                                          datetime | None]:
    """(average exit price, exit reason, time) of a position the broker no longer holds.
    A sell that is not ours, filled during a halt, is the kill switch's close-all: exit reason emergency."""
    symbol = position["symbol"]
    opened = position["opened_at"]
    sells = [x for o in broker_orders for x in o.walk()
             if x.symbol == symbol and x.side == "sell" and x.filled_qty > 0
             and (x.filled_at is None or opened is None or x.filled_at >= opened)]
    if not sells:
        return None, "broker", None
    qty = sum(x.filled_qty for x in sells)
    avg = sum(x.filled_qty * (x.filled_avg_price or 0.0) for x in sells) / qty
    last = max(sells, key=lambda x: x.filled_at or datetime.min.replace(tzinfo=opened.tzinfo if opened else None))
    row = ours.get(last.client_order_id)
    intent = row["intent"] if row else None
    if intent == "target" or (intent is None and last.type == "limit" and last.order_class == "bracket"):
        reason = "target"
    elif intent in ("stop", "protective_stop") or (intent is None and last.is_stop):
        reason = "stop"
    elif intent == "exit":
        reason = "eod"
    elif intent == "emergency" or halted or (row is None and during_halt(last.filled_at, halts)):
        reason = "emergency"
    else:
        reason = "manual"
    return avg, reason, last.filled_at


def reconcile(store: Any, broker: ReconcileBroker, broker_orders: Sequence[OrderInfo],
              broker_positions: Sequence[PositionInfo], *, mode: str, phase: str, now: datetime,
              halted: bool = False, fills_after: datetime | None = None,
              halts: Sequence[tuple[datetime, datetime | None]] = ()) -> ReconcileResult:
    res = ReconcileResult()
    index = index_orders(broker_orders)
    coid_by_id = {o.id: coid for coid, o in index.items()}
    # 1. orders we have not seen settle
    for row in store.orders_in_states(UNSETTLED, mode=mode):
        coid = row["client_order_id"]
        bo = index.get(coid)
        if bo is None:
            bo = broker.order_by_client_id(coid)
        if bo is None:
            sent_at = row.get("broker_time")
            if sent_at is not None and now - sent_at < IN_FLIGHT_GRACE:
                continue  # a request may still be on its way to the broker: decide next cycle, never re-send
            if row["status"] in ("intent", "unknown", "submitted"):
                store.mark_order_failed(coid, "the broker has no such order: never submitted (the agent "
                                        "stopped between recording and submitting); not re-sent",
                                        status="failed")
                res.never_submitted.append(coid)
            continue
        if bo.status != row["status"] or bo.filled_qty != float(row["filled_qty"] or 0):
            store.update_order_from_broker(coid, bo.status, bo.filled_qty, bo.filled_avg_price, bo.id)
            res.orders_updated += 1
    # 2. entries with fills become positions; their legs are recorded
    ours = store.orders_by_client_ids(index)
    opened = store.positions_for_entry_orders(c for c, r in ours.items() if r["intent"] == "entry")
    for bo in broker_orders:
        row = ours.get(bo.client_order_id)
        if row is None or row["intent"] != "entry" or bo.side != "buy" or (bo.filled_qty <= 0 and not bo.legs):
            continue
        if record_entry(store, bo, row, mode=mode, phase=phase, now=now, known=ours,
                        existing=opened.get(bo.client_order_id)):
            res.opened.append(bo.symbol)
    # 3. positions the broker no longer holds
    held = {p.symbol: p for p in broker_positions}
    open_rows = store.open_positions(mode=mode)
    gone = [pos for pos in open_rows if pos["symbol"] not in held]
    # our rows for the broker's orders (exit_for looks up nothing else), read only when a position is gone
    sold_rows = {c: r for c, r in store.orders_by_client_ids(index).items()
                 if r["mode"] == mode and r["status"] in SOLD_STATES} if gone else {}
    for pos in gone:
        price, reason, when = exit_for(pos, broker_orders, sold_rows, halted, halts)
        if price is None:
            price = float(pos["entry_price"])
            log.warning("position closed at the broker with no sell order found; exit at entry price",
                        extra=fields(symbol=pos["symbol"]))
        store.close_position(pos["position_id"], round(price, 4), None, when or now, reason)
        res.closed.append((pos["symbol"], reason))
    # 4. positions we never opened: adopt them so the risk engine protects them
    known = {p["symbol"] for p in open_rows}
    for symbol, bp in held.items():
        if symbol in known or symbol in res.opened:
            continue
        store.open_position(symbol=symbol, direction="long", qty=bp.qty, mode=mode, entry_price=bp.avg_entry_price,
                            phase=phase, opened_at=now, status="open")
        store.record_risk_event(rule="unknown_position", severity="breach", symbol=symbol, mode=mode, phase=phase,
                                detail={"qty": bp.qty, "avg_entry_price": bp.avg_entry_price,
                                        "note": "position at the broker that Catalyst did not open; adopted"})
        res.adopted.append(symbol)
    # 5. fills
    for act in broker.fills(after=fills_after):
        coid = coid_by_id.get(str(act.get("order_id")))
        if store.record_fill(broker_activity_id=str(act["id"]), symbol=str(act["symbol"]), side=str(act["side"]),
                             qty=float(act["qty"]), price=float(act["price"]),
                             filled_at=datetime.fromisoformat(str(act["transaction_time"]).replace("Z", "+00:00")),
                             client_order_id=coid, broker_order_id=str(act.get("order_id"))):
            res.fills_recorded += 1
    return res


def record_entry(store: Any, bo: OrderInfo, row: dict[str, Any], *, mode: str, phase: str, now: datetime,
                 known: dict[str, dict[str, Any]] | None = None, existing: dict[str, Any] | None = None) -> bool:
    """Record an entry's legs and, once it has fills, its position. True when a position was opened now.
    ``known`` (our order rows by client id) and ``existing`` (the entry's position) save queries when the
    caller has them already; without ``known`` both are looked up."""
    _record_legs(store, bo, row, mode, known)
    if known is None:
        existing = store.position_for_entry_order(bo.client_order_id)
    return _open_from_entry(store, bo, row, existing, mode=mode, phase=phase, now=now)


def _record_legs(store: Any, entry: OrderInfo, row: dict[str, Any], mode: str,
                 known: dict[str, dict[str, Any]] | None) -> None:
    for leg in entry.legs:
        existing = known.get(leg.client_order_id) if known is not None else store.get_order(leg.client_order_id)
        if existing is not None and existing["status"] == leg.status and \
                float(existing["filled_qty"] or 0) == leg.filled_qty:
            continue
        store.record_broker_order(
            client_order_id=leg.client_order_id, broker_order_id=leg.id, symbol=leg.symbol, side=leg.side,
            qty=leg.qty, order_type=leg.type, intent=LEG_INTENT.get(leg.type, "stop"), mode=mode,
            status=leg.status, time_in_force=leg.time_in_force, order_class=leg.order_class,
            limit_price=leg.limit_price, stop_price=leg.stop_price, filled_qty=leg.filled_qty,
            filled_avg_price=leg.filled_avg_price, position_id=row.get("position_id"),
            parent_client_order_id=row["client_order_id"], submitted_at=leg.submitted_at,
        )


def _open_from_entry(store: Any, bo: OrderInfo, row: dict[str, Any], existing: dict[str, Any] | None, *,
                     mode: str, phase: str, now: datetime) -> bool:
    if bo.filled_qty <= 0:
        return False
    if existing is not None:
        if existing["status"] == "open" and float(existing["qty"]) != bo.filled_qty and bo.filled_avg_price:
            store.update_position_fill(existing["position_id"], qty=bo.filled_qty, entry_price=bo.filled_avg_price)
        return False
    store.open_position(
        symbol=bo.symbol, direction="long", qty=bo.filled_qty, mode=mode, entry_price=bo.filled_avg_price,
        stop_price=row["stop_price"], target_price=row["take_profit"], phase=phase,
        entry_client_order_id=bo.client_order_id, opened_at=bo.filled_at or now, status="open",
    )
    return True
