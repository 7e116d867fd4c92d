"""``catalyst.reconcile.exit_for``: why and at what price a position the broker no longer holds was closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from catalyst.broker.models import OrderInfo
from catalyst.reconcile import exit_for

OPENED = datetime(2026, 11, 16, 15, 0, tzinfo=UTC)


def order(coid: str, *, side: str = "sell", type_: str = "market", order_class: str = "simple",
          status: str = "filled", qty: int = 10, filled_qty: int | None = None, price: float | None = 100.0,
          filled_at: datetime | None = None, symbol: str = "ACME", stop_price: float | None = None,
          limit_price: float | None = None, legs: tuple[OrderInfo, ...] = ()) -> OrderInfo:
    filled = qty if filled_qty is None else filled_qty
    return OrderInfo(
        id=f"id-{coid}", client_order_id=coid, symbol=symbol, side=side, type=type_, order_class=order_class,
        time_in_force="gtc", status=status, qty=qty, filled_qty=filled,
        filled_avg_price=price if filled else None, limit_price=limit_price, stop_price=stop_price,
        submitted_at=OPENED - timedelta(minutes=1), filled_at=(filled_at or OPENED + timedelta(minutes=30))
        if filled else None, legs=legs,
    )


def bracket(*, target_filled: bool, stop_filled: bool, target_price: float = 104.0,
            stop_price: float = 98.0) -> OrderInfo:
    """A filled bracket entry for ACME with its two legs; the leg that filled sold the position."""
    target = order("cat-paper-entry-ACME-1-target", type_="limit", order_class="bracket",
                   status="filled" if target_filled else "canceled", filled_qty=10 if target_filled else 0,
                   price=target_price, limit_price=target_price)
    stop = order("cat-paper-entry-ACME-1-stop", type_="stop", order_class="bracket",
                 status="filled" if stop_filled else "canceled", filled_qty=10 if stop_filled else 0,
                 price=stop_price - 0.05, stop_price=stop_price)
    return order("cat-paper-entry-ACME-1", side="buy", type_="limit", order_class="bracket", price=100.0,
                 filled_at=OPENED, limit_price=100.0, legs=(target, stop))


def position(symbol: str = "ACME", opened_at: datetime | None = OPENED) -> dict[str, Any]:
    return {"symbol": symbol, "opened_at": opened_at, "position_id": 1, "entry_price": 100.0}


def ours(*rows: tuple[str, str]) -> dict[str, dict[str, Any]]:
    return {coid: {"client_order_id": coid, "intent": intent} for coid, intent in rows}


# ------------------------------------------------------------------------ the reasons
def test_target_leg_fill_is_target() -> None:
    entry = bracket(target_filled=True, stop_filled=False)
    price, reason, when = exit_for(position(), [entry], ours((entry.legs[0].client_order_id, "target")), False)
    assert reason == "target"
    assert price == pytest.approx(104.0)
    assert when == entry.legs[0].filled_at


def test_target_leg_without_our_row_is_still_target() -> None:
    """A bracket's limit leg we never recorded (the agent died before recording the legs) reads as target."""
    entry = bracket(target_filled=True, stop_filled=False)
    assert exit_for(position(), [entry], {}, False)[1] == "target"


def test_stop_leg_fill_is_stop() -> None:
    entry = bracket(target_filled=False, stop_filled=True)
    price, reason, _ = exit_for(position(), [entry], ours((entry.legs[1].client_order_id, "stop")), False)
    assert reason == "stop"
    assert price == pytest.approx(97.95)


def test_stop_leg_without_our_row_is_still_stop() -> None:
    entry = bracket(target_filled=False, stop_filled=True)
    assert exit_for(position(), [entry], {}, False)[1] == "stop"


def test_protective_stop_placed_by_the_risk_engine_is_stop() -> None:
    stop = order("cat-paper-stop-ACME-1", type_="stop", stop_price=98.0, price=97.9)
    assert exit_for(position(), [stop], ours((stop.client_order_id, "protective_stop")), False)[1] == "stop"


def test_our_exit_is_eod() -> None:
    sell = order("cat-paper-eod-ACME-1", price=101.5)
    price, reason, _ = exit_for(position(), [sell], ours((sell.client_order_id, "exit")), False)
    assert (price, reason) == (pytest.approx(101.5), "eod")


def test_sells_found_during_a_halt_are_emergency() -> None:
    """The kill switch's close-all sells are the broker's orders, not ours: during a halt they mean emergency."""
    entry = bracket(target_filled=False, stop_filled=False)
    close_all = order("broker-generated-close-1", price=99.0)
    price, reason, _ = exit_for(position(), [entry, close_all], {}, True)
    assert (price, reason) == (pytest.approx(99.0), "emergency")


def test_emergency_intent_is_emergency_even_without_a_halt() -> None:
    sell = order("cat-paper-emergency-ACME-1", price=99.0)
    assert exit_for(position(), [sell], ours((sell.client_order_id, "emergency")), False)[1] == "emergency"


def test_unknown_sell_outside_a_halt_is_manual() -> None:
    sell = order("someone-by-hand", price=99.0)
    assert exit_for(position(), [sell], {}, False)[1] == "manual"


def test_no_sell_found_is_broker() -> None:
    assert exit_for(position(), [], {}, False) == (None, "broker", None)
    assert exit_for(position(), [bracket(target_filled=False, stop_filled=False)], {}, True) == (None, "broker", None)


# ------------------------------------------------------------------------ which sells count
def test_sells_of_other_symbols_and_unfilled_sells_do_not_count() -> None:
    other = order("other", symbol="BOLT", price=50.0)
    resting = order("resting", type_="limit", status="new", filled_qty=0, limit_price=120.0)
    assert exit_for(position(), [other, resting], {}, False) == (None, "broker", None)


def test_sells_before_the_position_opened_belong_to_an_earlier_position() -> None:
    earlier = order("earlier-stop", type_="stop", price=90.0, filled_at=OPENED - timedelta(days=1))
    assert exit_for(position(), [earlier], {}, False) == (None, "broker", None)


def test_several_sells_give_the_weighted_price_and_the_last_ones_reason_and_time() -> None:
    first = order("partial-by-hand", qty=4, price=101.0, filled_at=OPENED + timedelta(minutes=5))
    last = order("cat-paper-eod-ACME-1", qty=6, price=103.0, filled_at=OPENED + timedelta(minutes=50))
    price, reason, when = exit_for(position(), [last, first], ours((last.client_order_id, "exit")), False)
    assert price == pytest.approx((4 * 101.0 + 6 * 103.0) / 10)
    assert reason == "eod"
    assert when == OPENED + timedelta(minutes=50)


def test_position_without_an_open_time_counts_every_sell() -> None:
    earlier = order("old-stop", type_="stop", price=90.0, filled_at=OPENED - timedelta(days=1))
    assert exit_for(position(opened_at=None), [earlier], {}, False)[1] == "stop"
