"""Fault injection through the admin API, observed with alpaca-py (retries made instant in conftest)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, OrderStatus, OrderType, TimeInForce
from alpaca.trading.models import TradeActivity
from alpaca.trading.requests import (
    GetOrdersRequest,
    MarketOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)

from catalyst_sim.world import MINUTE, World


def buy(qty: int = 10, coid: str | None = None, symbol: str = "ACME") -> MarketOrderRequest:
    return MarketOrderRequest(symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                              client_order_id=coid)


def bracket_buy(world: World, qty: int = 10, symbol: str = "ACME") -> MarketOrderRequest:
    last = world.market.last_price(symbol, world.now)
    return MarketOrderRequest(symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
                              order_class=OrderClass.BRACKET,
                              take_profit=TakeProfitRequest(limit_price=round(last * 1.1, 2)),
                              stop_loss=StopLossRequest(stop_price=round(last * 0.9, 2)))


def test_latency_delays_matching_requests_only(tc: TradingClient, admin: Any) -> None:
    admin.fault(kind="latency", ms=150, count=2, match="GET /v2/account")
    started = time.perf_counter()
    tc.get_clock()
    assert time.perf_counter() - started < 0.1
    for _ in range(2):
        started = time.perf_counter()
        tc.get_account()
        assert time.perf_counter() - started >= 0.15
    started = time.perf_counter()
    tc.get_account()
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize("status", [500, 503, 504])
def test_n_server_errors_then_recovery(tc: TradingClient, admin: Any, status: int) -> None:
    admin.fault(kind="error", status=status, count=2)
    for _ in range(2):
        with pytest.raises(APIError) as info:
            tc.get_account()
        assert info.value.status_code == status
        assert isinstance(info.value.code, int) and info.value.message
    assert tc.get_account().status.value == "ACTIVE"


def test_alpaca_py_retries_504_itself(tc: TradingClient, admin: Any) -> None:
    tc._retry = 3  # alpaca-py's default; the wait stays 0 (see conftest)
    admin.fault(kind="error", status=504, count=2)
    assert tc.get_account().status.value == "ACTIVE"
    assert [f["kind"] for f in admin.call("GET", "/faults")["fired"]] == ["error", "error"]


def test_rate_limit_429_headers_and_alpaca_py_retry(tc: TradingClient, admin: Any, raw: Any) -> None:
    admin.fault(kind="rate_limit", retry_after=2, count=1)
    resp = raw("GET", "/v2/account")
    assert resp.status_code == 429 and set(resp.json()) == {"code", "message"}
    assert resp.headers["Retry-After"] == "2"
    assert resp.headers["X-Ratelimit-Limit"] == "200" and resp.headers["X-Ratelimit-Remaining"] == "0"
    assert int(resp.headers["X-Ratelimit-Reset"]) >= int(time.time())
    admin.fault(kind="rate_limit", count=3)
    with pytest.raises(APIError) as info:
        tc.get_account()  # retries off: the first 429 surfaces
    assert info.value.status_code == 429
    tc._retry = 3
    assert tc.get_account().status.value == "ACTIVE"  # two more 429s, retried without sleeping


def test_timeout_after_accept_leaves_an_order_to_find(tc: TradingClient, admin: Any) -> None:
    admin.next_open(30)
    admin.fault(kind="timeout_after_accept", seconds=0.2, match="POST /v2/orders")
    with pytest.raises(requests.exceptions.ConnectionError):
        tc.submit_order(buy(coid="lost-reply-1"))
    found = tc.get_order_by_client_id("lost-reply-1")
    assert found.status == OrderStatus.FILLED and int(found.filled_qty) == 10
    assert len(tc.get_orders(GetOrdersRequest(status="all"))) == 1


def test_connection_reset_does_nothing(tc: TradingClient, admin: Any) -> None:
    admin.next_open(30)
    admin.fault(kind="reset", match="POST /v2/orders")
    with pytest.raises(requests.exceptions.ConnectionError):
        tc.submit_order(buy(coid="reset-1"))
    with pytest.raises(APIError) as info:
        tc.get_order_by_client_id("reset-1")
    assert info.value.status_code == 404
    assert tc.submit_order(buy(coid="reset-1")).status == OrderStatus.FILLED


def test_reject_the_next_entry(tc: TradingClient, admin: Any) -> None:
    admin.next_open(30)
    admin.fault(kind="reject", target="entry", message="rejected by risk desk", account="paper")
    order = tc.submit_order(buy())
    assert order.status == OrderStatus.REJECTED and order.failed_at is not None
    assert tc.get_all_positions() == []
    assert tc.submit_order(buy()).status == OrderStatus.FILLED


def test_reject_the_stop_leg_of_a_bracket(tc: TradingClient, admin: Any, world: World) -> None:
    admin.next_open(30)
    admin.fault(kind="reject", target="stop_loss", account="paper")
    order = tc.submit_order(bracket_buy(world))
    assert order.status == OrderStatus.FILLED
    legs = {leg.order_type: leg.status for leg in tc.get_order_by_id(order.id).legs or []}
    assert legs == {OrderType.STOP: OrderStatus.REJECTED, OrderType.LIMIT: OrderStatus.NEW}


def test_partial_fill_then_the_rest(tc: TradingClient, admin: Any, world: World) -> None:
    admin.next_open(30)
    admin.fault(kind="partial_fill", ratio=0.3, account="paper")
    order = tc.submit_order(bracket_buy(world, qty=10))
    assert order.status == OrderStatus.PARTIALLY_FILLED and int(order.filled_qty) == 3
    assert {leg.status for leg in order.legs or []} == {OrderStatus.HELD}
    admin.advance(1)
    done = tc.get_order_by_id(order.id)
    assert done.status == OrderStatus.FILLED and int(done.filled_qty) == 10
    assert {leg.status for leg in done.legs or []} == {OrderStatus.NEW}
    acts = [TradeActivity(**a) for a in tc.get("/account/activities/FILL", {"direction": "asc"})]  # type: ignore[union-attr]
    assert [(a.type.value, a.qty, a.leaves_qty) for a in acts] == [("partial_fill", 3, 7), ("fill", 7, 0)]


def test_faults_are_scoped_by_account(make_tc: Any, admin: Any) -> None:
    paper, live = make_tc("paper"), make_tc("live")
    admin.fault(kind="error", status=503, count=1, account="live")
    assert paper.get_account().status.value == "ACTIVE"
    with pytest.raises(APIError):
        live.get_account()


def test_admin_api_lists_clears_and_refuses_bad_specs(admin: Any, tc: TradingClient) -> None:
    admin.fault(kind="error", status=500, count=None)
    armed = admin.call("GET", "/faults")["armed"]
    assert [f["kind"] for f in armed] == ["error"]
    assert admin.call("DELETE", "/faults") == {"cleared": 1}
    assert tc.get_account().status.value == "ACTIVE"
    for bad in ({"kind": "meteor"}, {"kind": "error", "status": 418}, {"kind": "latency", "colour": "red"},
                {"kind": "partial_fill", "ratio": 1.5}, {"kind": "reject", "target": "everything"},
                {"kind": "error", "count": 0}):
        body = admin.call("POST", "/faults", bad, expect=400)
        assert set(body) == {"code", "message"}


def test_admin_api_is_never_faulted(admin: Any) -> None:
    admin.fault(kind="error", status=500, count=None)
    assert admin.state()["faults"][0]["kind"] == "error"
    admin.advance(1)


def test_a_partial_take_profit_resizes_the_stop(tc: TradingClient, admin: Any, world: World) -> None:
    admin.next_open(30)
    upcoming = [world.market.bar_at("ACME", world.now + i * MINUTE) for i in range(1, 31)]
    target = max(b.h for b in upcoming if b is not None)  # reached exactly once in the next half hour
    last = world.market.last_price("ACME", world.now)
    assert target > last
    order = tc.submit_order(MarketOrderRequest(
        symbol="ACME", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=target), stop_loss=StopLossRequest(stop_price=round(last * 0.9, 2))))
    assert order.status == OrderStatus.FILLED
    admin.fault(kind="partial_fill", ratio=0.3, account="paper")
    admin.advance(31)
    legs = {leg.order_type: leg for leg in tc.get_order_by_id(order.id).legs or []}
    take, stop = legs[OrderType.LIMIT], legs[OrderType.STOP]
    assert take.status == OrderStatus.PARTIALLY_FILLED and int(take.filled_qty) == 3
    assert stop.status == OrderStatus.NEW and int(stop.qty) == 7  # resized to the shares still held
    position = tc.get_open_position("ACME")
    assert int(position.qty) == 7 and int(position.qty_available) == 0
