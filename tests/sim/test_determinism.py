"""Replays are deterministic: same seed + same requests = byte-identical fills and orders."""

from __future__ import annotations

from typing import Any

import requests
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, TimeInForce
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
)

from catalyst_sim.server import RunningSim
from catalyst_sim.world import World

HEADERS = {"APCA-API-KEY-ID": "sim-paper-key", "APCA-API-SECRET-KEY": "sim-paper-secret"}


def _script(sim: RunningSim, world: World) -> tuple[bytes, bytes, bytes]:
    """A two-day script through alpaca-py on the gap-down-stop scenario; returns the raw JSON read back."""
    tc = TradingClient("sim-paper-key", "sim-paper-secret", url_override=sim.url("paper"))
    http = requests.Session()
    admin = sim.base_url + "/_sim"
    http.post(admin + "/clock/set", json={"time": "2026-11-23T09:45:00-05:00"}, timeout=10)
    for symbol, qty in (("ACME", 20), ("BOLT", 30), ("CRUX", 5)):
        last = world.market.last_price(symbol, world.now)  # read-only: the same in both worlds
        tc.submit_order(MarketOrderRequest(
            symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
            order_class=OrderClass.BRACKET, take_profit=TakeProfitRequest(limit_price=round(last * 1.01, 2)),
            stop_loss=StopLossRequest(stop_price=round(last * 0.985, 2))))
    last = world.market.last_price("DYNO", world.now)
    tc.submit_order(LimitOrderRequest(symbol="DYNO", qty=40, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                                      limit_price=round(last * 0.998, 2)))
    tc.submit_order(StopOrderRequest(symbol="EMBR", qty=25, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
                                     stop_price=round(world.market.last_price("EMBR", world.now) * 1.004, 2)))
    http.post(admin + "/faults", json={"kind": "partial_fill", "ratio": 0.4, "account": "paper"}, timeout=10)
    http.post(admin + "/clock/advance", json={"minutes": 200}, timeout=10)
    tc.submit_order(MarketOrderRequest(symbol="FLUX", qty=12, side=OrderSide.BUY, time_in_force=TimeInForce.DAY))
    http.post(admin + "/clock/next-open", json={"offset_minutes": 45}, timeout=10)
    tc.close_all_positions(cancel_orders=True)
    http.post(admin + "/clock/advance", json={"minutes": 5}, timeout=10)
    base = sim.url("paper") + "/v2"
    orders = http.get(base + "/orders", params={"status": "all", "nested": "true", "direction": "asc",
                                                "limit": 500}, headers=HEADERS, timeout=10).content
    fills = http.get(base + "/account/activities/FILL", params={"direction": "asc"}, headers=HEADERS,
                     timeout=10).content
    account = http.get(base + "/account", headers=HEADERS, timeout=10).content
    return orders, fills, account


def _run(make_world: Any, seed: int) -> tuple[bytes, bytes, bytes]:
    world = make_world("gap-down-stop", seed=seed)
    with RunningSim(world) as sim:
        return _script(sim, world)


def test_same_seed_same_requests_are_byte_identical(make_world: Any) -> None:
    first, second = _run(make_world, 7), _run(make_world, 7)
    assert first == second
    orders, fills, _ = first
    assert orders.count(b'"status":"filled"') >= 5 and fills.count(b'"activity_type":"FILL"') >= 8
    assert b'"type":"partial_fill"' in fills


def test_a_different_seed_gives_different_fills(make_world: Any) -> None:
    seven, eight = _run(make_world, 7), _run(make_world, 8)
    assert seven[1] != eight[1] and seven[2] != eight[2]
