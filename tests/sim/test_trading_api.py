"""Trading API v2 through the real alpaca-py client (validation on), raw HTTP only where it cannot go."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import (
    AssetClass,
    AssetExchange,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    QueryOrderStatus,
    TimeInForce,
)
from alpaca.trading.models import Calendar, ClosePositionResponse, FailedClosePositionDetails, TradeActivity
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetAssetsRequest,
    GetCalendarRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
)

from catalyst_sim.world import MINUTE, World

ACME = "ACME"


def market(symbol: str, qty: int, side: OrderSide = OrderSide.BUY, **kw: Any) -> MarketOrderRequest:
    return MarketOrderRequest(symbol=symbol, qty=qty, side=side, time_in_force=TimeInForce.DAY, **kw)


def bracket(symbol: str, qty: int, tp: float, sl: float, limit: float | None = None,
            tif: TimeInForce = TimeInForce.DAY) -> MarketOrderRequest | LimitOrderRequest:
    legs = {"order_class": OrderClass.BRACKET, "take_profit": TakeProfitRequest(limit_price=round(tp, 2)),
            "stop_loss": StopLossRequest(stop_price=round(sl, 2))}
    if limit is None:
        return MarketOrderRequest(symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=tif, **legs)
    return LimitOrderRequest(symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=tif,
                             limit_price=round(limit, 2), **legs)


def api_error(call: Any) -> APIError:
    with pytest.raises(APIError) as info:
        call()
    return info.value


def slipped(price: float, side: str, bps: float = 2.0) -> float:
    return round(price * (1 + bps / 10_000) if side == "buy" else price * (1 - bps / 10_000), 2)


def fills(tc: TradingClient, **params: Any) -> list[TradeActivity]:
    """alpaca-py 0.44 has no activities method: use the client's own GET and validate each item."""
    raw = tc.get("/account/activities/FILL", params or None)
    assert isinstance(raw, list)
    return [TradeActivity(**item) for item in raw]


# ------------------------------------------------------------------------------ account, clock
def test_account_numbers_are_strings_and_no_pdt_fields(tc: TradingClient, raw: Any) -> None:
    acct = tc.get_account()
    assert acct.status.value == "ACTIVE"
    assert float(acct.cash) == float(acct.equity) == float(acct.last_equity) == 100_000.0
    assert acct.account_number.startswith("PA")
    body = raw("GET", "/v2/account").json()
    for key in ("cash", "equity", "last_equity", "buying_power", "portfolio_value", "long_market_value",
                "multiplier", "regt_buying_power", "daytrading_buying_power", "initial_margin"):
        assert isinstance(body[key], str), key
        float(body[key])
    assert "pattern_day_trader" not in body and "daytrade_count" not in body


def test_clock_follows_the_virtual_clock(tc: TradingClient, admin: Any) -> None:
    clock = tc.get_clock()
    assert not clock.is_open
    assert (clock.timestamp.hour, clock.timestamp.minute) == (8, 0)
    assert clock.next_open.date() == date(2026, 11, 16) and clock.next_open.hour == 9
    admin.next_open(5)
    clock = tc.get_clock()
    assert clock.is_open and (clock.timestamp.hour, clock.timestamp.minute) == (9, 35)
    assert clock.next_close.hour == 16 and clock.next_open.date() == date(2026, 11, 17)


def test_calendar_has_holidays_early_closes_and_hhmm_times(tc: TradingClient, raw: Any) -> None:
    days = tc.get_calendar(GetCalendarRequest(start=date(2026, 11, 24), end=date(2026, 11, 30)))
    assert all(isinstance(d, Calendar) for d in days)
    by_date = {d.date: d for d in days}
    assert date(2026, 11, 26) not in by_date  # Thanksgiving
    assert (by_date[date(2026, 11, 27)].close.hour, by_date[date(2026, 11, 27)].close.minute) == (13, 0)
    assert (by_date[date(2026, 11, 30)].open.hour, by_date[date(2026, 11, 30)].open.minute) == (9, 30)
    body = raw("GET", "/v2/calendar", params={"start": "2026-11-27", "end": "2026-11-27"}).json()
    assert len(body) == 1
    assert body[0]["open"] == "09:30" and body[0]["close"] == "13:00"
    for day in raw("GET", "/v2/calendar", params={"start": "2026-06-01", "end": "2026-12-31"}).json():
        assert re.fullmatch(r"\d\d:\d\d", day["open"]) and re.fullmatch(r"\d\d:\d\d", day["close"])
        assert day["open"] == "09:30"  # Eastern time in both summer and winter


# -------------------------------------------------------------------------------------- assets
def test_assets_list_and_one(tc: TradingClient) -> None:
    assets = tc.get_all_assets(GetAssetsRequest(asset_class=AssetClass.US_EQUITY))
    assert len(assets) == 50 and {a.symbol for a in assets} >= {"ACME", "BOLT", "CRUX"}
    acme = tc.get_asset(ACME)
    assert acme.tradable and acme.exchange in (AssetExchange.NASDAQ, AssetExchange.NYSE)
    assert tc.get_asset(str(acme.id)).symbol == ACME
    err = api_error(lambda: tc.get_asset("NOPE"))
    assert err.status_code == 404 and err.code == 40410000


# -------------------------------------------------------------------------------------- orders
def test_market_order_fills_at_the_last_trade_with_slippage(tc: TradingClient, admin: Any, world: World) -> None:
    admin.next_open(30)
    last = world.market.last_price(ACME, world.now)
    order = tc.submit_order(market(ACME, 10, client_order_id="mkt-1"))
    assert order.status == OrderStatus.FILLED and order.client_order_id == "mkt-1"
    assert float(order.filled_avg_price) == slipped(last, "buy")
    acct = tc.get_account()
    assert float(acct.cash) == pytest.approx(100_000 - 10 * slipped(last, "buy"), abs=0.005)
    pos = tc.get_open_position(ACME)
    assert int(pos.qty) == 10 and float(pos.avg_entry_price) == slipped(last, "buy")
    assert float(acct.equity) == pytest.approx(float(acct.cash) + float(pos.market_value), abs=0.005)


def test_order_placed_before_the_open_fills_at_the_first_trade(tc: TradingClient, admin: Any, world: World) -> None:
    order = tc.submit_order(market(ACME, 3))
    assert order.status in (OrderStatus.NEW, OrderStatus.ACCEPTED) and order.filled_at is None
    admin.next_open(1)
    first = world.market.bar_at(ACME, world.calendar.session_on(date(2026, 11, 16)).open)  # type: ignore[union-attr]
    assert first is not None
    got = tc.get_order_by_id(order.id)
    assert got.status == OrderStatus.FILLED and float(got.filled_avg_price) == slipped(first.o, "buy")


def _future_bars(world: World, symbol: str, minutes: int) -> list[Any]:
    t = world.now
    return [b for b in (world.market.bar_at(symbol, t + i * MINUTE) for i in range(minutes)) if b is not None]


def test_limit_order_rests_then_fills_when_crossed(tc: TradingClient, admin: Any, world: World) -> None:
    admin.next_open(30)
    bars = _future_bars(world, ACME, 60)
    low = min(b.l for b in bars)
    hit = next(b for b in bars if b.l <= low)
    order = tc.submit_order(LimitOrderRequest(symbol=ACME, qty=5, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                                              limit_price=low))
    assert order.status == OrderStatus.NEW
    admin.advance(60)
    got = tc.get_order_by_id(order.id)
    assert got.status == OrderStatus.FILLED
    assert float(got.filled_avg_price) == min(low, hit.o)
    assert got.filled_at == hit.t + MINUTE


def test_stop_order_triggers_when_crossed(tc: TradingClient, admin: Any, world: World) -> None:
    admin.next_open(30)
    bars = _future_bars(world, ACME, 60)
    high = max(b.h for b in bars)
    hit = next(b for b in bars if b.h >= high)
    order = tc.submit_order(StopOrderRequest(symbol=ACME, qty=5, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
                                             stop_price=high))
    assert order.status == OrderStatus.NEW and order.order_type == OrderType.STOP
    admin.advance(60)
    got = tc.get_order_by_id(order.id)
    assert got.status == OrderStatus.FILLED
    assert float(got.filled_avg_price) == slipped(max(high, hit.o), "buy")


def test_bracket_legs_are_held_until_the_entry_fills(tc: TradingClient, admin: Any, world: World) -> None:
    admin.next_open(30)
    last = world.market.last_price(ACME, world.now)
    order = tc.submit_order(bracket(ACME, 10, tp=last * 1.2, sl=last * 0.8, limit=last * 0.9))
    assert order.order_class == OrderClass.BRACKET and order.status == OrderStatus.NEW
    assert order.legs is not None and {leg.status for leg in order.legs} == {OrderStatus.HELD}
    assert {leg.order_type for leg in order.legs} == {OrderType.LIMIT, OrderType.STOP}
    err = api_error(lambda: tc.cancel_order_by_id(order.legs[0].id))  # type: ignore[index]
    assert err.status_code == 422
    # cancel the entry: held legs go with it
    tc.cancel_order_by_id(order.id)
    got = tc.get_order_by_id(order.id)
    assert got.status == OrderStatus.CANCELED
    assert {leg.status for leg in got.legs or []} == {OrderStatus.CANCELED}


def test_bracket_market_entry_activates_legs_as_oco(tc: TradingClient, admin: Any, world: World) -> None:
    admin.next_open(30)
    last = world.market.last_price(ACME, world.now)
    order = tc.submit_order(bracket(ACME, 10, tp=last * 1.2, sl=last * 0.8))
    assert order.status == OrderStatus.FILLED
    assert {leg.status for leg in order.legs or []} == {OrderStatus.NEW}
    pos = tc.get_open_position(ACME)
    assert int(pos.qty_available) == 0  # the OCO pair holds the ten shares once
    tp_leg = next(leg for leg in order.legs or [] if leg.order_type == OrderType.LIMIT)
    tc.cancel_order_by_id(tp_leg.id)  # canceling one leg of an OCO pair cancels the other
    got = tc.get_order_by_id(order.id)
    assert {leg.status for leg in got.legs or []} == {OrderStatus.CANCELED}
    assert int(tc.get_open_position(ACME).qty_available) == 10


def test_bracket_validation_errors_are_422(tc: TradingClient, admin: Any, world: World) -> None:
    admin.next_open(30)
    last = world.market.last_price(ACME, world.now)
    err = api_error(lambda: tc.submit_order(bracket(ACME, 1, tp=last * 0.9, sl=last * 0.8)))
    assert err.status_code == 422 and "take_profit" in err.message


def test_client_order_id_lookup_and_uniqueness(tc: TradingClient) -> None:
    order = tc.submit_order(market(ACME, 1, client_order_id="entry-42"))
    assert tc.get_order_by_client_id("entry-42").id == order.id
    err = api_error(lambda: tc.submit_order(market(ACME, 1, client_order_id="entry-42")))
    assert err.status_code == 422 and err.code == 42210000
    assert api_error(lambda: tc.get_order_by_client_id("nope")).status_code == 404


def test_get_orders_filters(tc: TradingClient, admin: Any, world: World) -> None:
    admin.next_open(30)
    last = world.market.last_price("BOLT", world.now)
    filled = tc.submit_order(market(ACME, 2))
    resting = tc.submit_order(LimitOrderRequest(symbol="BOLT", qty=1, side=OrderSide.BUY,
                                                time_in_force=TimeInForce.GTC, limit_price=round(last * 0.5, 2)))
    br = tc.submit_order(bracket("CRUX", 1, tp=1000, sl=1, limit=world.market.last_price("CRUX", world.now) * 0.5))
    open_ids = {o.id for o in tc.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))}
    assert resting.id in open_ids and br.id in open_ids and filled.id not in open_ids
    assert {leg.id for leg in br.legs or []} <= open_ids  # not nested: legs are listed on their own
    nested = tc.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN, nested=True))
    assert {o.id for o in nested} == {resting.id, br.id}
    assert len(next(o for o in nested if o.id == br.id).legs or []) == 2
    closed = tc.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED))
    assert [o.id for o in closed] == [filled.id]
    everything = tc.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, nested=True))
    assert len(everything) == 3
    only_bolt = tc.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=["BOLT"]))
    assert [o.id for o in only_bolt] == [resting.id]
    assert len(tc.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, limit=2))) == 2


def test_filled_bracket_with_working_legs_stays_in_nested_open_list(tc: TradingClient, admin: Any,
                                                                    world: World) -> None:
    admin.next_open(30)
    last = world.market.last_price(ACME, world.now)
    order = tc.submit_order(bracket(ACME, 4, tp=last * 1.2, sl=last * 0.8))
    nested = tc.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN, nested=True))
    assert [o.id for o in nested] == [order.id]
    assert {leg.status for leg in nested[0].legs or []} == {OrderStatus.NEW}


def test_cancel_one_and_cancel_all_207(tc: TradingClient, admin: Any, world: World, raw: Any) -> None:
    admin.next_open(30)
    price = round(world.market.last_price(ACME, world.now) * 0.5, 2)
    ids = [tc.submit_order(LimitOrderRequest(symbol=ACME, qty=1, side=OrderSide.BUY,
                                             time_in_force=TimeInForce.DAY, limit_price=price)).id for _ in range(3)]
    tc.cancel_order_by_id(ids[0])
    assert tc.get_order_by_id(ids[0]).status == OrderStatus.CANCELED
    assert api_error(lambda: tc.cancel_order_by_id(ids[0])).status_code == 422
    assert api_error(lambda: tc.cancel_order_by_id("00000000-0000-4000-8000-000000000000")).status_code == 404
    responses = tc.cancel_orders()
    assert {r.id for r in responses} == set(ids[1:]) and {r.status for r in responses} == {200}
    assert tc.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN)) == []
    tc.submit_order(LimitOrderRequest(symbol=ACME, qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                                      limit_price=price))
    resp = raw("DELETE", "/v2/orders")
    assert resp.status_code == 207 and len(resp.json()) == 1


def test_buying_power_rejection_is_403(tc: TradingClient, admin: Any) -> None:
    admin.next_open(30)
    err = api_error(lambda: tc.submit_order(market(ACME, 10_000)))
    assert err.status_code == 403 and "buying power" in err.message
    assert tc.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL)) == []


def test_selling_what_is_not_held_is_403(tc: TradingClient, admin: Any) -> None:
    admin.next_open(30)
    assert api_error(lambda: tc.submit_order(market(ACME, 1, OrderSide.SELL))).status_code == 403


@pytest.mark.parametrize("change", [{"qty": 2.5}, {"notional": 100}, {"time_in_force": "ioc"},
                                    {"type": "trailing_stop"}, {"side": "short"}, {"symbol": "NOPE"}])
def test_unsupported_or_invalid_orders_are_422(raw: Any, change: dict[str, Any]) -> None:
    body = {"symbol": ACME, "qty": 1, "side": "buy", "type": "market", "time_in_force": "day", **change}
    if "notional" in change:
        del body["qty"]
    resp = raw("POST", "/v2/orders", json=body)
    assert resp.status_code == 422, resp.text
    assert set(resp.json()) == {"code", "message"}


def test_post_bodies_take_numbers_or_strings(raw: Any, admin: Any, world: World) -> None:
    admin.next_open(30)
    price = round(world.market.last_price(ACME, world.now) * 0.5, 2)
    for qty, limit in ((3, price), ("3", str(price)), (3.0, f"{price:.2f}")):
        resp = raw("POST", "/v2/orders", json={"symbol": ACME, "qty": qty, "side": "buy", "type": "limit",
                                                "time_in_force": "day", "limit_price": limit})
        assert resp.status_code == 200, resp.text
        assert resp.json()["qty"] == "3" and float(resp.json()["limit_price"]) == price
    tp, sl = str(round(price * 4, 2)), round(price * 1.5, 2)
    resp = raw("POST", "/v2/orders", json={"symbol": ACME, "qty": "2", "side": "buy", "type": "market",
                                            "time_in_force": "gtc", "order_class": "bracket",
                                            "take_profit": {"limit_price": tp}, "stop_loss": {"stop_price": sl}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "filled" and len(resp.json()["legs"]) == 2


@pytest.mark.parametrize("spelling", ["true", "True", "TRUE", "1"])
def test_query_booleans_accept_both_spellings(raw: Any, spelling: str) -> None:
    raw("POST", "/v2/orders", json={"symbol": ACME, "qty": 1, "side": "buy", "type": "limit",
                                     "time_in_force": "gtc", "order_class": "bracket", "limit_price": "100",
                                     "take_profit": {"limit_price": "300"}, "stop_loss": {"stop_price": "50"}})
    listed = raw("GET", "/v2/orders", params={"status": "all", "nested": spelling}).json()
    assert len(listed) == 1 and len(listed[0]["legs"]) == 2
    flat = raw("GET", "/v2/orders", params={"status": "all", "nested": spelling.replace("1", "0").replace(
        "true", "false").replace("True", "False").replace("TRUE", "FALSE")}).json()
    assert len(flat) == 3
    resp = raw("DELETE", "/v2/positions", params={"cancel_orders": spelling})
    assert resp.status_code == 207
    assert raw("GET", "/v2/orders", params={"status": "open"}).json() == []


def test_bad_query_boolean_is_422(raw: Any) -> None:
    resp = raw("GET", "/v2/orders", params={"nested": "yes"})
    assert resp.status_code == 422 and set(resp.json()) == {"code", "message"}


# ----------------------------------------------------------------------------------- positions
def _buy(tc: TradingClient, admin: Any, symbol: str = ACME, qty: int = 10) -> None:
    admin.next_open(30)
    tc.submit_order(market(symbol, qty))


def test_positions_numbers_are_strings(tc: TradingClient, admin: Any, raw: Any) -> None:
    _buy(tc, admin)
    admin.advance(15)
    positions = tc.get_all_positions()
    assert [p.symbol for p in positions] == [ACME]
    pos = tc.get_open_position(ACME)
    assert int(pos.qty) == 10 and pos.asset_class == AssetClass.US_EQUITY
    body = raw("GET", "/v2/positions/ACME").json()
    for key in ("qty", "avg_entry_price", "market_value", "cost_basis", "unrealized_pl", "unrealized_plpc",
                "current_price", "lastday_price", "change_today", "qty_available", "unrealized_intraday_pl"):
        assert isinstance(body[key], str), key
    assert api_error(lambda: tc.get_open_position("BOLT")).status_code == 404


def test_close_position_by_qty_and_percentage(tc: TradingClient, admin: Any) -> None:
    _buy(tc, admin, qty=10)
    order = tc.close_position(ACME, ClosePositionRequest(qty="4"))
    assert order.side == OrderSide.SELL and int(order.qty) == 4 and order.status == OrderStatus.FILLED
    assert int(tc.get_open_position(ACME).qty) == 6
    order = tc.close_position(ACME, ClosePositionRequest(percentage="50"))
    assert int(order.qty) == 3
    assert int(tc.get_open_position(ACME).qty) == 3
    tc.close_position(ACME)
    assert tc.get_all_positions() == []
    assert api_error(lambda: tc.close_position(ACME)).status_code == 404


def test_close_position_held_by_orders_is_403(tc: TradingClient, admin: Any, world: World) -> None:
    admin.next_open(30)
    last = world.market.last_price(ACME, world.now)
    tc.submit_order(bracket(ACME, 5, tp=last * 1.2, sl=last * 0.8))
    err = api_error(lambda: tc.close_position(ACME))
    assert err.status_code == 403 and "insufficient qty" in err.message


def test_close_all_without_cancel_reports_insufficient_qty(tc: TradingClient, admin: Any, world: World,
                                                           raw: Any) -> None:
    admin.next_open(30)
    last = world.market.last_price(ACME, world.now)
    tc.submit_order(bracket(ACME, 5, tp=last * 1.2, sl=last * 0.8))
    tc.submit_order(market("BOLT", 3))
    results = tc.close_all_positions(cancel_orders=False)
    assert all(isinstance(r, ClosePositionResponse) for r in results)
    by_symbol = {r.symbol: r for r in results}
    assert by_symbol["BOLT"].status == 200 and by_symbol["BOLT"].body.status == OrderStatus.FILLED  # type: ignore[union-attr]
    failed = by_symbol[ACME]
    assert failed.status == 403 and isinstance(failed.body, FailedClosePositionDetails)
    assert "insufficient qty" in failed.body.message and failed.body.held_for_orders == 5
    assert int(tc.get_open_position(ACME).qty) == 5
    resp = raw("DELETE", "/v2/positions", params={"cancel_orders": "false"})
    assert resp.status_code == 207 and resp.json()[0]["status"] == 403


def test_close_all_with_cancel_orders_flattens(tc: TradingClient, admin: Any, world: World) -> None:
    admin.next_open(30)
    last = world.market.last_price(ACME, world.now)
    entry = tc.submit_order(bracket(ACME, 5, tp=last * 1.2, sl=last * 0.8))
    tc.submit_order(market("BOLT", 3))
    results = tc.close_all_positions(cancel_orders=True)
    assert {r.symbol: r.status for r in results} == {ACME: 200, "BOLT": 200}
    assert tc.get_all_positions() == []
    assert {leg.status for leg in tc.get_order_by_id(entry.id).legs or []} == {OrderStatus.CANCELED}
    acct = tc.get_account()
    assert float(acct.equity) == float(acct.cash) < 100_000  # round trips paid the slippage


# ---------------------------------------------------------------------------------- activities
def test_fill_activities_validate_as_trade_activity(tc: TradingClient, admin: Any, world: World) -> None:
    _buy(tc, admin, qty=10)
    admin.advance(5)
    tc.close_position(ACME, ClosePositionRequest(qty="4"))
    acts = fills(tc, direction="asc")
    assert [(a.side, a.qty, a.type.value) for a in acts] == [(OrderSide.BUY, 10, "fill"), (OrderSide.SELL, 4, "fill")]
    assert acts[0].transaction_time < acts[1].transaction_time
    assert fills(tc)[0].id == acts[1].id  # default newest first
    page = fills(tc, direction="asc", page_size=1)
    assert [a.id for a in page] == [acts[0].id]
    assert [a.id for a in fills(tc, direction="asc", page_token=acts[0].id)] == [acts[1].id]
    assert fills(tc, date="2026-11-17") == []
    all_kinds = tc.get("/account/activities", {"activity_types": "FILL"})
    assert isinstance(all_kinds, list) and len(all_kinds) == 2


def test_commission_and_cash_are_consistent(make_world: Any) -> None:
    from catalyst_sim.server import RunningSim

    world = make_world(commission_per_share=0.01, slippage_bps=0.0)
    with RunningSim(world) as sim:
        from alpaca.trading.client import TradingClient

        tc = TradingClient("sim-paper-key", "sim-paper-secret", url_override=sim.url("paper"))
        world.jump_to_next_open()
        world.advance(30)
        last = world.market.last_price(ACME, world.now)
        tc.submit_order(market(ACME, 7))
        acct = tc.get_account()
        assert float(acct.cash) == pytest.approx(100_000 - 7 * last - 0.07, abs=0.001)
        world.advance(10)
        tc.close_position(ACME)
        sell = fills(tc)[0]
        acct = tc.get_account()
        expected = 100_000 - 7 * last - 0.07 + 7 * sell.price - 0.07
        assert float(acct.cash) == pytest.approx(expected, abs=0.001) and float(acct.equity) == float(acct.cash)


# ----------------------------------------------------------------------------- day boundaries
def test_day_orders_expire_at_the_close_and_gtc_survive(tc: TradingClient, admin: Any, world: World) -> None:
    admin.next_open(30)
    far = round(world.market.last_price(ACME, world.now) * 0.5, 2)
    day = tc.submit_order(LimitOrderRequest(symbol=ACME, qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                                            limit_price=far))
    gtc = tc.submit_order(LimitOrderRequest(symbol=ACME, qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
                                            limit_price=far))
    admin.next_open()
    got = tc.get_order_by_id(day.id)
    assert got.status == OrderStatus.EXPIRED and got.expired_at is not None
    assert (got.expired_at.hour, got.expired_at.minute) == (21, 0)  # 16:00 ET in UTC
    assert tc.get_order_by_id(gtc.id).status == OrderStatus.NEW


def test_last_equity_is_the_previous_close(tc: TradingClient, admin: Any, world: World) -> None:
    _buy(tc, admin, qty=50)
    admin.advance(60)
    assert float(tc.get_account().last_equity) == 100_000.0
    session = world.calendar.session_on(date(2026, 11, 16))
    assert session is not None
    admin.set_time(session.close + timedelta(minutes=5))
    close_equity = float(tc.get_account().equity)
    assert float(tc.get_account().last_equity) == 100_000.0  # still today's start until the next open
    admin.next_open(10)
    acct = tc.get_account()
    assert float(acct.last_equity) == close_equity != float(acct.equity)


# ---------------------------------------------------------------------------------------- auth
def test_each_account_has_its_own_keys(make_tc: Any, sim: Any) -> None:
    from catalyst_sim.world import KeyPair

    paper, live = make_tc("paper"), make_tc("live")
    assert paper.get_account().account_number != live.get_account().account_number
    assert float(live.get_account().cash) == 25_000.0
    live_on_paper = make_tc("paper", keys=KeyPair("sim-live-key", "sim-live-secret"))
    paper_on_live = make_tc("live", keys=KeyPair("sim-paper-key", "sim-paper-secret"))
    wrong_secret = make_tc("paper", keys=KeyPair("sim-paper-key", "nope"))
    for client in (live_on_paper, paper_on_live, wrong_secret):
        err = api_error(client.get_account)
        assert err.status_code in (401, 403) and err.code == 40110000


def test_expired_keys_get_401(tc: TradingClient, admin: Any) -> None:
    admin.account("paper", keys_expired=True)
    err = api_error(tc.get_account)
    assert err.status_code == 401 and "expired" in err.message
    admin.account("paper", keys_expired=False)
    assert tc.get_account().status.value == "ACTIVE"


def test_unprefixed_paths_pick_the_account_by_key(sim: Any) -> None:
    import requests

    resp = requests.get(sim.base_url + "/v2/account", timeout=5,
                        headers={"APCA-API-KEY-ID": "sim-live-key", "APCA-API-SECRET-KEY": "sim-live-secret"})
    assert resp.status_code == 200 and resp.json()["account_number"].startswith("LA")
    resp = requests.get(sim.base_url + "/v2/account", timeout=5)
    assert resp.status_code == 401 and set(resp.json()) == {"code", "message"}


def test_blocked_account_cannot_trade(tc: TradingClient, admin: Any) -> None:
    admin.account("paper", trading_blocked=True)
    assert tc.get_account().trading_blocked
    assert api_error(lambda: tc.submit_order(market(ACME, 1))).status_code == 403


def test_unknown_endpoint_and_method(raw: Any) -> None:
    assert raw("GET", "/v2/nothing").status_code == 404
    resp = raw("PUT", "/v2/account")
    assert resp.status_code == 405 and set(resp.json()) == {"code", "message"}
    resp = raw("PATCH", "/v2/account")
    assert resp.status_code == 405 and set(resp.json()) == {"code", "message"}


# --------------------------------------------------------------------------------- admin clock
def test_admin_clock_moves_forward_only(admin: Any, tc: TradingClient) -> None:
    state = admin.advance(90)
    assert state["now"].startswith("2026-11-16T09:30")
    admin.next_open()
    assert tc.get_clock().timestamp.date() == date(2026, 11, 17)
    admin.call("POST", "/clock/set", {"time": "2026-11-16T12:00:00-05:00"}, expect=409)
    admin.call("POST", "/clock/advance", {"minutes": -5}, expect=409)
    admin.call("POST", "/clock/advance", {"minutes": "soon"}, expect=400)
    state = admin.set_time(__import__("datetime").datetime.fromisoformat("2026-11-27T12:59:00-05:00"))
    assert state["is_open"]
    admin.advance(1)
    assert not tc.get_clock().is_open  # the early close at 13:00
    assert tc.get_clock().next_open.date() == date(2026, 11, 30)
