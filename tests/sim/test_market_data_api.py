"""Market Data API v2 through alpaca-py's StockHistoricalDataClient (validation on)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.models import Bar, BarSet, Quote, Snapshot, Trade
from alpaca.data.requests import (
    StockBarsRequest,
    StockLatestBarRequest,
    StockLatestQuoteRequest,
    StockLatestTradeRequest,
    StockSnapshotRequest,
)
from alpaca.data.timeframe import TimeFrame

from catalyst_sim.server import RunningSim
from catalyst_sim.world import MINUTE, UTC, World

SYMBOLS = ["ACME", "BOLT", "CRUX"]


def bars(md: StockHistoricalDataClient, tf: TimeFrame, start: datetime, end: datetime | None = None,
         limit: int | None = None, symbols: list[str] | None = None) -> dict[str, list[Bar]]:
    got = md.get_stock_bars(StockBarsRequest(symbol_or_symbols=symbols or SYMBOLS, timeframe=tf, start=start,
                                             end=end, limit=limit))
    assert isinstance(got, BarSet)
    return got.data


def _open(world: World, d: date = date(2026, 11, 16)) -> datetime:
    session = world.calendar.session_on(d)
    assert session is not None
    return session.open


def test_minute_bars_for_several_symbols_up_to_now(md: StockHistoricalDataClient, admin: Any,
                                                   world: World) -> None:
    admin.next_open(30)
    opened = _open(world)
    got = bars(md, TimeFrame.Minute, opened, end=opened + timedelta(days=3))  # the future is not served
    assert set(got) == set(SYMBOLS)
    for symbol, series in got.items():
        assert len(series) == 30
        assert series[0].timestamp == opened and series[-1].timestamp + MINUTE == world.now
        want = world.market.minute_bars(symbol, date(2026, 11, 16))[:30]
        assert [(b.open, b.high, b.low, b.close, b.volume) for b in series] == [(w.o, w.h, w.l, w.c, w.v)
                                                                                for w in want]
        assert all(b.trade_count and b.vwap for b in series)


def test_daily_history_has_more_than_60_sessions_before_the_start(md: StockHistoricalDataClient,
                                                                  world: World) -> None:
    start = world.now - timedelta(days=120)
    got = bars(md, TimeFrame.Day, start)
    for series in got.values():
        assert len(series) >= 60
        assert series[-1].timestamp.date() == date(2026, 11, 13)  # Friday; Monday has not opened yet
        assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in series)


def test_daily_bar_of_the_current_session_is_partial(md: StockHistoricalDataClient, admin: Any,
                                                     world: World) -> None:
    admin.next_open(60)
    today = bars(md, TimeFrame.Day, _open(world) - timedelta(hours=12), symbols=["ACME"])["ACME"]
    assert len(today) == 1
    minutes = world.market.minute_bars("ACME", date(2026, 11, 16))[:60]
    assert today[0].volume == sum(b.v for b in minutes) and today[0].close == minutes[-1].c


def test_next_page_token_is_followed_across_symbols(make_world: Any) -> None:
    world = make_world(page_limit=7)
    world.jump_to_next_open()
    world.advance(25)
    with RunningSim(world) as sim:
        md = StockHistoricalDataClient("sim-paper-key", "sim-paper-secret", url_override=sim.url("paper"))
        paged = bars(md, TimeFrame.Minute, _open(world))
        assert {s: len(v) for s, v in paged.items()} == {s: 25 for s in SYMBOLS}  # 75 bars over 11 pages
        assert [b.timestamp for b in paged["BOLT"]] == sorted({b.timestamp for b in paged["BOLT"]})
        limited = bars(md, TimeFrame.Minute, _open(world), limit=30)
        assert {s: len(v) for s, v in limited.items()} == {"ACME": 25, "BOLT": 5}
        import requests

        http = requests.Session()
        http.headers.update({"APCA-API-KEY-ID": "sim-paper-key", "APCA-API-SECRET-KEY": "sim-paper-secret"})
        params: dict[str, Any] = {"symbols": "ACME,BOLT", "timeframe": "1Min", "start": "2026-11-16", "limit": 20}
        pages = []
        while True:
            body = http.get(sim.url("paper") + "/v2/stocks/bars", params=params, timeout=5).json()
            pages.append(sum(len(v) for v in body["bars"].values()))
            if not body["next_page_token"]:
                break
            params["page_token"] = body["next_page_token"]
        assert pages == [7] * 7 + [1]


def test_bars_json_carries_n_and_vw(raw: Any, admin: Any) -> None:
    admin.next_open(3)
    body = raw("GET", "/v2/stocks/bars", params={"symbols": "ACME", "timeframe": "1Min"}).json()
    assert set(body) == {"bars", "next_page_token"} and body["next_page_token"] is None
    for bar in body["bars"]["ACME"]:
        assert set(bar) == {"t", "o", "h", "l", "c", "v", "n", "vw"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", bar["t"])
        assert isinstance(bar["v"], int) and isinstance(bar["n"], int) and isinstance(bar["vw"], float)


def test_latest_trades_quotes_and_bars(md: StockHistoricalDataClient, admin: Any, world: World) -> None:
    admin.next_open(45)
    trades = md.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols=SYMBOLS))
    quotes = md.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols=SYMBOLS))
    latest = md.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols=SYMBOLS))
    for s in SYMBOLS:
        last = world.market.last_price(s, world.now)
        assert isinstance(trades[s], Trade) and trades[s].price == last and trades[s].timestamp < world.now
        assert isinstance(quotes[s], Quote) and quotes[s].bid_price < last < quotes[s].ask_price
        assert isinstance(latest[s], Bar) and latest[s].close == last
        assert latest[s].timestamp == world.now - MINUTE


def test_snapshots(md: StockHistoricalDataClient, admin: Any, world: World) -> None:
    admin.next_open(90)
    snaps = md.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols=SYMBOLS))
    for s in SYMBOLS:
        snap = snaps[s]
        assert isinstance(snap, Snapshot)
        last = world.market.last_price(s, world.now)
        assert snap.latest_trade is not None and snap.latest_trade.price == last
        assert snap.minute_bar is not None and snap.minute_bar.close == last
        assert snap.daily_bar is not None and snap.daily_bar.close == last
        prev = world.market.daily_bar(s, date(2026, 11, 13))
        assert snap.previous_daily_bar is not None and prev is not None and snap.previous_daily_bar.close == prev.c


def test_snapshot_before_the_open_shows_the_last_session(md: StockHistoricalDataClient, world: World) -> None:
    snap = md.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols="ACME"))["ACME"]
    friday = world.market.daily_bar("ACME", date(2026, 11, 13))
    assert friday is not None and snap.daily_bar is not None
    assert snap.daily_bar.timestamp.date() == date(2026, 11, 13) and snap.daily_bar.close == friday.c
    assert snap.latest_trade is not None and snap.latest_trade.price == friday.c


def test_halted_symbol_publishes_no_bars(make_world: Any) -> None:
    world = make_world("halt")
    world.advance_to(datetime(2026, 11, 24, 15, 30, tzinfo=UTC))  # 10:30 ET, inside the 10:15-10:45 halt
    with RunningSim(world) as sim:
        md = StockHistoricalDataClient("sim-paper-key", "sim-paper-secret", url_override=sim.url("paper"))
        latest = md.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols="DYNO"))["DYNO"]
        assert latest.timestamp == datetime(2026, 11, 24, 15, 14, tzinfo=UTC)  # 10:14 ET, the last before
        series = bars(md, TimeFrame.Minute, _open(world, date(2026, 11, 24)), symbols=["DYNO"])["DYNO"]
        assert len(series) == 45 and series[-1].timestamp == latest.timestamp


@pytest.mark.parametrize(("params", "status"), [
    ({"symbols": "NOPE", "timeframe": "1Min"}, 400),
    ({"symbols": "ACME", "timeframe": "7Min"}, 400),
    ({"timeframe": "1Min"}, 400),
    ({"symbols": "ACME", "timeframe": "1Min", "start": "yesterday"}, 422),
])
def test_bad_market_data_requests(raw: Any, params: dict[str, str], status: int) -> None:
    resp = raw("GET", "/v2/stocks/bars", params=params)
    assert resp.status_code == status and set(resp.json()) == {"code", "message"}


def test_unknown_symbol_via_alpaca_py_is_an_api_error(md: StockHistoricalDataClient) -> None:
    with pytest.raises(APIError) as info:
        md.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="NOPE"))
    assert info.value.status_code == 400
