"""Scripted days, read back through alpaca-py: the "done when" bracket day and the packaged scenarios."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, OrderStatus, OrderType, TimeInForce
from alpaca.trading.models import Order, TradeActivity
from alpaca.trading.requests import (
    GetOrderByIdRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
)

from catalyst_sim.server import RunningSim
from catalyst_sim.world import MINUTE, NY, World

SLIP = 2.0 / 10_000


def _legs(order: Order) -> dict[OrderType, Order]:
    return {leg.order_type: leg for leg in order.legs or []}  # type: ignore[misc]


def _fills(tc: TradingClient) -> list[TradeActivity]:
    raw = tc.get("/account/activities/FILL", {"direction": "asc"})
    assert isinstance(raw, list)
    return [TradeActivity(**item) for item in raw]


def _until(admin: Any, tc: TradingClient, order_id: Any, done: Any, max_minutes: int) -> Order:
    for _ in range(max_minutes):
        admin.advance(1)
        order = tc.get_order_by_id(order_id, GetOrderByIdRequest(nested=True))
        if done(order):
            return order
    raise AssertionError(f"not done within {max_minutes} minutes: {order}")


def test_a_bracket_through_a_whole_day(tc: TradingClient, admin: Any, world: World) -> None:
    """Done when: entry fill, leg activation, target or stop exit, and the close's expiry, via alpaca-py."""
    admin.next_open(15)  # Monday 2026-11-16 09:45 ET
    last = world.market.last_price("ACME", world.now)
    upcoming = [world.market.bar_at("ACME", world.now + i * MINUTE) for i in range(30)]
    entry_price = min(b.l for b in upcoming if b is not None)
    assert entry_price < last  # the entry rests first
    bracket = tc.submit_order(LimitOrderRequest(
        symbol="ACME", qty=20, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, limit_price=entry_price,
        client_order_id="day-bracket", order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=round(entry_price * 1.003, 2)),
        stop_loss=StopLossRequest(stop_price=round(entry_price * 0.997, 2))))
    never = tc.submit_order(LimitOrderRequest(symbol="BOLT", qty=5, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                                              limit_price=round(world.market.last_price("BOLT", world.now) * 0.8, 2)))
    assert bracket.status == OrderStatus.NEW
    assert {leg.status for leg in bracket.legs or []} == {OrderStatus.HELD}

    # 1. the entry fills; the legs activate as an OCO pair protecting all 20 shares
    entered = _until(admin, tc, bracket.id, lambda o: o.status == OrderStatus.FILLED, 30)
    assert float(entered.filled_avg_price) <= entry_price
    assert {leg.status for leg in entered.legs or []} == {OrderStatus.NEW}
    position = tc.get_open_position("ACME")
    assert int(position.qty) == 20 and int(position.qty_available) == 0

    # 2. one leg exits, the other is canceled, the position is flat
    exited = _until(admin, tc, bracket.id,
                    lambda o: any(leg.status == OrderStatus.FILLED for leg in o.legs or []), 360)
    legs = _legs(exited)
    winner = next(leg for leg in legs.values() if leg.status == OrderStatus.FILLED)
    loser = next(leg for leg in legs.values() if leg is not winner)
    assert loser.status == OrderStatus.CANCELED and int(winner.filled_qty) == 20
    exit_price = float(winner.filled_avg_price)
    if winner.order_type == OrderType.LIMIT:
        assert exit_price >= float(winner.limit_price)  # target: the limit or better
    else:
        assert exit_price <= float(winner.stop_price)  # stop: at the stop or worse
    assert tc.get_all_positions() == []
    fills = _fills(tc)
    assert [(f.side, f.qty, f.order_id) for f in fills] == [(OrderSide.BUY, 20, bracket.id),
                                                            (OrderSide.SELL, 20, winner.id)]
    acct = tc.get_account()
    assert float(acct.cash) == round(100_000 - 20 * fills[0].price + 20 * fills[1].price, 2) == float(acct.equity)

    # 3. the close: the order that never filled expires at 16:00 ET; the market is closed
    admin.set_time(datetime(2026, 11, 16, 16, 5, tzinfo=NY))
    expired = tc.get_order_by_id(never.id)
    assert expired.status == OrderStatus.EXPIRED
    assert expired.expired_at is not None and expired.expired_at.astimezone(NY).hour == 16
    assert tc.get_order_by_id(bracket.id).status == OrderStatus.FILLED
    assert not tc.get_clock().is_open
    admin.next_open()
    assert float(tc.get_account().last_equity) == float(acct.equity)


# ------------------------------------------------------------------------------- scenarios
@contextmanager
def _scenario_sim(make_world: Any, name: str, at: datetime) -> Iterator[tuple[World, RunningSim, TradingClient]]:
    world = make_world(name)
    world.advance_to(at)
    with RunningSim(world) as sim:
        yield world, sim, TradingClient("sim-paper-key", "sim-paper-secret", url_override=sim.url("paper"))


def test_gap_down_stop_fills_at_the_gapped_open(make_world: Any) -> None:
    with _scenario_sim(make_world, "gap-down-stop", datetime(2026, 11, 23, 15, 30, tzinfo=NY)) as (world, _, tc):
        tc.submit_order(MarketOrderRequest(symbol="ACME", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY))
        monday = world.market.minute_bars("ACME", date(2026, 11, 23))
        stop = round(min(b.l for b in monday) * 0.99, 2)  # under Monday's whole range
        order = tc.submit_order(StopOrderRequest(symbol="ACME", qty=10, side=OrderSide.SELL,
                                                 time_in_force=TimeInForce.GTC, stop_price=stop))
        world.advance_to(datetime(2026, 11, 24, 9, 35, tzinfo=NY))
        got = tc.get_order_by_id(order.id)
        tuesday_open = world.market.minute_bars("ACME", date(2026, 11, 24))[0].o
        assert abs(tuesday_open / monday[-1].c - 0.92) < 1e-3  # the scripted -8% gap
        assert got.status == OrderStatus.FILLED
        assert float(got.filled_avg_price) == round(tuesday_open * (1 - SLIP), 2) < stop  # worse than the stop
        assert got.filled_at == datetime(2026, 11, 24, 9, 31, tzinfo=NY)


def test_gap_up_opens_above_the_close_and_a_buy_stop_pays_it(make_world: Any) -> None:
    with _scenario_sim(make_world, "gap-up", datetime(2026, 11, 23, 17, 0, tzinfo=NY)) as (world, sim, tc):
        close = world.market.last_price("BOLT", world.now)
        order = tc.submit_order(StopOrderRequest(symbol="BOLT", qty=10, side=OrderSide.BUY,
                                                 time_in_force=TimeInForce.GTC, stop_price=round(close * 1.02, 2)))
        world.advance_to(datetime(2026, 11, 24, 9, 31, tzinfo=NY))
        md = StockHistoricalDataClient("sim-paper-key", "sim-paper-secret", url_override=sim.url("paper"))
        bars = md.get_stock_bars(StockBarsRequest(symbol_or_symbols="BOLT", timeframe=TimeFrame.Day,
                                                  start=datetime(2026, 11, 23, tzinfo=NY))).data["BOLT"]
        assert [b.timestamp.astimezone(NY).date() for b in bars] == [date(2026, 11, 23), date(2026, 11, 24)]
        assert abs(bars[1].open / bars[0].close - 1.06) < 1e-3
        got = tc.get_order_by_id(order.id)
        assert got.status == OrderStatus.FILLED
        assert float(got.filled_avg_price) == round(bars[1].open * (1 + SLIP), 2) > close * 1.02


def test_target_hit_takes_profit_and_cancels_the_stop(make_world: Any) -> None:
    with _scenario_sim(make_world, "target-hit", datetime(2026, 11, 25, 9, 45, tzinfo=NY)) as (world, _, tc):
        last = world.market.last_price("CRUX", world.now)
        order = tc.submit_order(MarketOrderRequest(
            symbol="CRUX", qty=8, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=round(last * 1.03, 2)),
            stop_loss=StopLossRequest(stop_price=round(last * 0.97, 2))))
        world.advance_to(datetime(2026, 11, 25, 11, 5, tzinfo=NY))
        legs = _legs(tc.get_order_by_id(order.id))
        take = legs[OrderType.LIMIT]
        assert take.status == OrderStatus.FILLED and legs[OrderType.STOP].status == OrderStatus.CANCELED
        assert float(take.filled_avg_price) >= round(last * 1.03, 2)
        assert take.filled_at is not None
        assert datetime(2026, 11, 25, 10, 0, tzinfo=NY) < take.filled_at <= datetime(2026, 11, 25, 11, 5, tzinfo=NY)
        assert tc.get_all_positions() == []


def test_halt_holds_orders_until_trading_resumes(make_world: Any) -> None:
    with _scenario_sim(make_world, "halt", datetime(2026, 11, 24, 10, 20, tzinfo=NY)) as (world, _, tc):
        order = tc.submit_order(MarketOrderRequest(symbol="DYNO", qty=10, side=OrderSide.BUY,
                                                   time_in_force=TimeInForce.DAY))
        assert order.status == OrderStatus.NEW  # halted: no fill on arrival
        world.advance_to(datetime(2026, 11, 24, 10, 45, tzinfo=NY))
        assert tc.get_order_by_id(order.id).status == OrderStatus.NEW
        world.advance(1)
        got = tc.get_order_by_id(order.id)
        resumed = world.market.bar_at("DYNO", datetime(2026, 11, 24, 10, 45, tzinfo=NY))
        assert resumed is not None and got.status == OrderStatus.FILLED
        assert float(got.filled_avg_price) == round(resumed.o * (1 + SLIP), 2)
        assert got.filled_at == datetime(2026, 11, 24, 10, 46, tzinfo=NY)


def test_flat_day_triggers_nothing(make_world: Any) -> None:
    with _scenario_sim(make_world, "flat-day", datetime(2026, 11, 23, 9, 31, tzinfo=NY)) as (world, _, tc):
        last = world.market.last_price("ACME", world.now)
        order = tc.submit_order(MarketOrderRequest(
            symbol="ACME", qty=5, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=round(last * 1.01, 2)),
            stop_loss=StopLossRequest(stop_price=round(last * 0.99, 2))))
        world.advance_to(datetime(2026, 11, 23, 16, 0, tzinfo=NY) + timedelta(minutes=1))
        day = world.market.daily_bar("ACME", date(2026, 11, 23))
        assert day is not None and (day.h - day.l) / day.o < 0.005
        legs = tc.get_order_by_id(order.id).legs or []
        assert {leg.status for leg in legs} == {OrderStatus.EXPIRED}  # day legs expire at the close
        assert int(tc.get_open_position("ACME").qty) == 5
