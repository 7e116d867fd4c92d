"""Simulator benchmarks: a trading day in-process, HTTP round trips through alpaca-py, and process RSS.

Run:  .venv/bin/python benchmarks/bench_sim.py
Prints a small table; writes nothing. Targets: day replay <= 3 s (median of 5), round trip p50 <= 5 ms,
simulator RSS <= 150 MB after a day replayed through HTTP.

The day: 390 one-minute steps over all 50 symbols; at 09:31, 10:30, 11:30, 12:30, 13:30 and 14:30 ET
every symbol gets a market-entry bracket (target +0.4 %, stop -0.4 %) and a resting limit buy 0.3 %
under the market, so orders fill, legs activate, targets and stops exit, and day orders expire at 16:00.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, TimeInForce
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)

from catalyst_sim.calendar import MarketCalendar
from catalyst_sim.matching import Account, BrokerError
from catalyst_sim.world import FUTURE_DAYS, HISTORY_DAYS, World, WorldConfig

ORDER_MINUTES = (1, 60, 120, 180, 240, 300)  # minutes after the open
QTY = 5
RUNS = 5
ROUND_TRIPS = 300
KEY, SECRET = "sim-paper-key", "sim-paper-secret"


def _orders_in_process(acct: Account, symbols: list[str]) -> int:
    placed = 0
    for symbol in symbols:
        last = acct.price(symbol)
        try:
            acct.submit(symbol=symbol, qty=QTY, side="buy", type="market", time_in_force="day",
                        order_class="bracket", take_profit=round(last * 1.004, 2), stop_loss=round(last * 0.996, 2))
            acct.submit(symbol=symbol, qty=QTY, side="buy", type="limit", time_in_force="day",
                        limit_price=round(last * 0.997, 2))
            placed += 2
        except BrokerError:
            pass
    return placed


def replay_day_in_process(calendar: MarketCalendar) -> tuple[float, int, int]:
    """Seconds for one trading day (World built, 390 steps, orders flowing); orders and fills made."""
    started = time.perf_counter()
    world = World(WorldConfig(), calendar=calendar)
    acct = world.accounts["paper"]
    symbols = sorted(world.symbols)
    world.jump_to_next_open()
    placed = 0
    for minute in range(390):
        if minute in ORDER_MINUTES:
            placed += _orders_in_process(acct, symbols)
        world.advance(1)
    assert not world.is_open()
    return time.perf_counter() - started, placed, len(acct.fills)


def _orders_over_http(tc: TradingClient, prices: dict[str, float]) -> None:
    for symbol, last in prices.items():
        try:
            tc.submit_order(MarketOrderRequest(
                symbol=symbol, qty=QTY, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                order_class=OrderClass.BRACKET, take_profit=TakeProfitRequest(limit_price=round(last * 1.004, 2)),
                stop_loss=StopLossRequest(stop_price=round(last * 0.996, 2))))
            tc.submit_order(LimitOrderRequest(symbol=symbol, qty=QTY, side=OrderSide.BUY,
                                              time_in_force=TimeInForce.DAY, limit_price=round(last * 0.997, 2)))
        except APIError:  # a refused order (buying power) is part of the day
            pass


def _latest_prices(tc: TradingClient, base: str, symbols: list[str]) -> dict[str, float]:
    raw: Any = tc.get("/stocks/trades/latest", {"symbols": ",".join(symbols)})
    return {s: float(t["p"]) for s, t in raw["trades"].items()}


def start_server() -> tuple[subprocess.Popen[str], str]:
    exe = Path(sys.executable).with_name("catalyst-sim")
    proc = subprocess.Popen([str(exe), "serve", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            return proc, m.group(1)
    raise RuntimeError("catalyst-sim did not report its port")


def percentiles(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=10)
    return statistics.median(samples) * 1000, qs[8] * 1000


def time_calls(call: Callable[[], object], n: int = ROUND_TRIPS) -> tuple[float, float]:
    for _ in range(20):
        call()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t)
    return percentiles(samples)


def http_benchmarks(base: str) -> dict[str, tuple[float, float]]:
    tc = TradingClient(KEY, SECRET, url_override=base + "/paper")
    tc._session.post(base + "/_sim/clock/next-open", json={"offset_minutes": 5})  # type: ignore[attr-defined]

    def submit_cancel() -> None:
        order: Any = tc.submit_order(LimitOrderRequest(symbol="ACME", qty=1, side=OrderSide.BUY,
                                                       time_in_force=TimeInForce.DAY, limit_price=50.0))
        tc.cancel_order_by_id(order.id)

    return {"get_account": time_calls(tc.get_account), "get_clock": time_calls(tc.get_clock),
            "submit+cancel (2 requests)": time_calls(submit_cancel)}


def replay_day_over_http(base: str) -> float:
    tc = TradingClient(KEY, SECRET, url_override=base + "/paper")
    http: Any = tc._session  # type: ignore[attr-defined]
    state = http.get(base + "/_sim/state").json()
    symbols = sorted(a.symbol for a in tc.get_all_assets())  # type: ignore[union-attr]
    http.post(base + "/_sim/clock/set", json={"time": state["next_open"]})
    started = time.perf_counter()
    for minute in range(390):
        if minute in ORDER_MINUTES:
            _orders_over_http(tc, _latest_prices(tc, base, symbols))
        http.post(base + "/_sim/clock/advance", json={"minutes": 1})
    return time.perf_counter() - started


def rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmHWM"].split()[0]) / 1024, int(fields["VmRSS"].split()[0]) / 1024


def main() -> None:
    start = WorldConfig().start.date()
    calendar = MarketCalendar(start - timedelta(days=HISTORY_DAYS), start + timedelta(days=FUTURE_DAYS))
    runs = [replay_day_in_process(calendar) for _ in range(RUNS)]
    day_median = statistics.median(r[0] for r in runs)
    _, placed, filled = runs[0]
    proc, base = start_server()
    try:
        latencies = http_benchmarks(base)
        http_day = replay_day_over_http(base)
        hwm, rss = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    rows = [
        ("day replay in-process, 390 steps x 50 symbols (median of 5)", f"{day_median:.2f} s", "<= 3 s"),
        ("  orders placed / fills in that day", f"{placed} / {filled}", ""),
    ]
    for name, (p50, p90) in latencies.items():
        rows.append((f"HTTP round trip via alpaca-py: {name}", f"p50 {p50:.2f} ms, p90 {p90:.2f} ms", "p50 <= 5 ms"))
    rows.append(("same day replayed through HTTP (admin advance + alpaca-py)", f"{http_day:.2f} s", ""))
    rows.append(("simulator process memory after it: VmHWM / VmRSS", f"{hwm:.0f} MB / {rss:.0f} MB", "<= 150 MB"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'result':<32} target")
    for name, result, target in rows:
        print(f"{name:<{width}}  {result:<32} {target}")


if __name__ == "__main__":
    main()
